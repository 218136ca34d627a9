using System.Net;
using System.Net.Sockets;
using System.Reflection;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// The command line as an operator meets it: the real dll as a process. `--check` loads and
// validates exactly as startup does (the same error line, the same warnings) and binds nothing;
// `--strict` turns an unknown key into that error; `--help` and `--version` answer and exit 0.
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class CommandLineTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("lb-cli-");
    // The configurations' listen and admin ports, held by the test: a --check that bound them
    // would fail to listen (exit 1) instead of answering.
    readonly TcpListener _listen = Hold();
    readonly TcpListener _admin = Hold();

    public void Dispose()
    {
        _listen.Stop();
        _admin.Stop();
        _dir.Delete(recursive: true);
    }

    string Ports => $"""
          "listen": "http://127.0.0.1:{Port(_listen)}",
          "admin": "http://127.0.0.1:{Port(_admin)}",
        """;

    async Task<string> WriteAsync(string json)
    {
        var path = Path.Combine(_dir.FullName, "lb.json");
        await File.WriteAllTextAsync(path, json);
        return path;
    }

    [Fact]
    public async Task Check_ValidFile_PrintsOkWithBackendsAndPolicyAndExitsZero()
    {
        var path = await WriteAsync("{" + Ports + """
              "balancing": "least-connections",
              "backends": [ { "url": "http://127.0.0.1:9" }, { "url": "http://127.0.0.1:10", "weight": 2 } ]
            }
            """);

        var (exit, stdout, stderr) = await RunAsync("--check", "--config", path);

        Assert.True(exit == 0, $"exit code {exit}; stderr: {string.Join("\n", stderr)}");
        Assert.Equal([$"{path}: ok (2 backends, least-connections)"], stdout);
        Assert.Empty(stderr);
    }

    [Fact]
    public async Task Check_DefaultPath_IsLbJsonInTheCurrentDirectory()
    {
        await WriteAsync("{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:9" } ] }""");

        var (exit, stdout, _) = await RunInAsync(_dir.FullName, "--check");

        Assert.Equal(0, exit);
        Assert.Equal([$"{Path.Combine(_dir.FullName, "lb.json")}: ok (1 backends, round-robin)"], stdout);
    }

    public static TheoryData<string, string, string> BadConfigs => new()
    {
        { "bad JSON", "{\n{PORTS}\n  \"backends\": [ { \"url\": \"http://127.0.0.1:9\" } ],\n  \"balancing\": round-robin\n}", "line 5, column 16" },
        { "bad value", """{{PORTS} "backends": [ { "url": "http://127.0.0.1:9" } ], "healthCheck": { "interval": "10 parsecs" } }""", "healthCheck.interval" },
        { "no backends", """{{PORTS} "backends": [] }""", "backends" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public async Task Check_BadFile_ExitsTwoWithTheLineStartupPrints(string problem, string json, string expected)
    {
        var path = await WriteAsync(json.Replace("{PORTS}", Ports));

        var check = await RunAsync("--check", "--config", path);
        var startup = await RunAsync("--config", path);

        Assert.True(check.Exit == 2, $"{problem}: exit code {check.Exit}");
        var line = Assert.Single(check.Stderr);
        Assert.Contains(path, line);
        Assert.Contains(expected, line);
        Assert.Empty(check.Stdout);
        Assert.Equal(startup.Stderr, check.Stderr); // exactly as startup validates
        Assert.Equal(2, startup.Exit);
    }

    [Fact]
    public async Task Check_MissingFile_ExitsTwoNamingTheFile()
    {
        var path = Path.Combine(_dir.FullName, "nowhere", "lb.json");

        var (exit, stdout, stderr) = await RunAsync("--check", "--config", path);

        Assert.Equal(2, exit);
        Assert.Equal([$"error: {path}: file not found"], stderr);
        Assert.Empty(stdout);
    }

    const string Misspelt = """ "backends": [ { "url": "http://127.0.0.1:9" } ], "healthCheck": { "intervall": "5s" } }""";

    [Fact]
    public async Task Check_UnknownKey_OkWithTheWarningOnStderr()
    {
        var path = await WriteAsync("{" + Ports + Misspelt);

        var (exit, stdout, stderr) = await RunAsync("--check", "--config", path);

        Assert.Equal(0, exit);
        Assert.Equal([$"{path}: ok (1 backends, round-robin)"], stdout);
        Assert.Equal([$"warning: {path}: healthCheck.intervall: unknown key, ignored (did you mean healthCheck.interval?)"], stderr);
    }

    [Theory]
    [InlineData("--check", "--strict")]
    [InlineData("--strict", "--check")]
    [InlineData("--strict")] // at startup too: it never listens
    public async Task Strict_UnknownKey_ExitsTwoWithTheWarningAsTheError(params string[] args)
    {
        var path = await WriteAsync("{" + Ports + Misspelt);

        var (exit, stdout, stderr) = await RunAsync([.. args, "--config", path]);

        Assert.Equal(2, exit);
        Assert.Equal([$"error: {path}: healthCheck.intervall: unknown key (did you mean healthCheck.interval?)"], stderr);
        Assert.Empty(stdout);
    }

    [Fact]
    public async Task Strict_NoUnknownKey_ChecksOk()
    {
        var path = await WriteAsync("{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:9" } ] }""");

        var (exit, stdout, stderr) = await RunAsync("--check", "--strict", "--config", path);

        Assert.Equal(0, exit);
        Assert.Equal([$"{path}: ok (1 backends, round-robin)"], stdout);
        Assert.Empty(stderr);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("--config", "elsewhere.json", "--help")]
    public async Task Help_PrintsUsageOnStdoutAndExitsZero(params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(args);

        Assert.Equal(0, exit);
        Assert.StartsWith("usage: LoadBalancer", stdout[0]);
        Assert.Contains(stdout, l => l.Contains("--check"));
        Assert.Contains(stdout, l => l.Contains("--strict"));
        Assert.Contains(stdout, l => l.Contains("exit codes"));
        Assert.Empty(stderr);
    }

    [Fact]
    public async Task Version_PrintsTheAssemblysInformationalVersionAndExitsZero()
    {
        var expected = typeof(LoadBalancer.Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;

        var (exit, stdout, stderr) = await RunAsync("--version");

        Assert.Equal(0, exit);
        Assert.Equal([$"LoadBalancer {expected}"], stdout);
        Assert.Matches(@"^LoadBalancer \d+\.\d+\.\d+", stdout[0]);
        Assert.Empty(stderr);
    }

    [Theory]
    [InlineData("--chek")]
    [InlineData("--config")] // no PATH
    [InlineData("lb.json")]
    public async Task UnknownArgument_UsageOnStderrAndExitsTwo(params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(args);

        Assert.Equal(2, exit);
        Assert.StartsWith("error: ", stderr[0]);
        Assert.Contains(stderr, l => l.StartsWith("usage: LoadBalancer", StringComparison.Ordinal));
        Assert.Empty(stdout);
    }

    static Task<(int Exit, IReadOnlyList<string> Stdout, IReadOnlyList<string> Stderr)> RunAsync(params string[] args) =>
        ResultAsync(LbProcess.Start(args));

    static Task<(int Exit, IReadOnlyList<string> Stdout, IReadOnlyList<string> Stderr)> RunInAsync(string directory, params string[] args) =>
        ResultAsync(LbProcess.StartIn(directory, args));

    static async Task<(int Exit, IReadOnlyList<string> Stdout, IReadOnlyList<string> Stderr)> ResultAsync(LbProcess started)
    {
        await using var lb = started;
        var exit = await lb.WaitForExitAsync();
        var stdout = lb.StandardOutput.Length == 0 ? [] : lb.StandardOutput.Split('\n');
        return (exit, stdout, lb.StandardErrorLines);
    }

    static TcpListener Hold()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    static int Port(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;
}
