using System.Net;
using System.Net.Sockets;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// A configuration that cannot be used, as the user meets it: run the real dll as a process,
// get exit code 2 and one line on stderr naming the file and the key (or line and column),
// no stack trace, and nothing listening. The config's listen and admin ports are held by the
// test while the process runs: a balancer that bound them before validating would fail to
// listen (exit 1, "cannot listen") instead.
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class ConfigErrorTests
{
    const string Ports = """
          "listen": "http://127.0.0.1:{LISTEN}",
          "admin": "http://127.0.0.1:{ADMIN}",
        """;

    public static TheoryData<string, string, string> BadConfigs => new()
    {
        { "bad JSON", "{\n" + Ports + "\n  \"backends\": [ { \"url\": \"http://127.0.0.1:9\" } ],\n  \"balancing\": round-robin\n}", "line 5, column 16" },
        { "unknown balancing", "{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:9" } ], "balancing": "fastest" }""", "balancing" },
        { "relative URL", "{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:9" }, { "url": "/api" } ] }""", "backends[1].url" },
        { "bad duration", "{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:9" } ], "healthCheck": { "interval": "10 parsecs" } }""", "healthCheck.interval" },
        { "threshold 0", "{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:9" } ], "healthCheck": { "healthyThreshold": 0 } }""", "healthCheck.healthyThreshold" },
        { "no backends", "{" + Ports + """ "backends": [] }""", "backends" },
        { "duplicate URLs", "{" + Ports + """ "backends": [ { "url": "http://127.0.0.1:80/" }, { "url": "http://127.0.0.1" } ] }""", "backends[1].url" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public async Task Start_BadConfig_ExitsTwoWithOneLineNamingFileAndKey(string problem, string json, string expected)
    {
        using var listen = Hold();
        using var admin = Hold();
        var dir = Directory.CreateTempSubdirectory("lb-bad-config-");
        try
        {
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, json
                .Replace("{LISTEN}", Port(listen).ToString())
                .Replace("{ADMIN}", Port(admin).ToString()));

            await AssertRejectedAsync(path, expected, problem);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Start_MissingConfigFile_ExitsTwoWithOneLineNamingFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"lb-missing-{Guid.NewGuid():N}", "lb.json");

        await AssertRejectedAsync(path, "not found", "missing file");
    }

    static async Task AssertRejectedAsync(string path, string expected, string problem)
    {
        await using var lb = LbProcess.Start("--config", path);
        var exitCode = await lb.WaitForExitAsync();
        var stderr = lb.StandardErrorLines;

        Assert.True(exitCode == 2, $"{problem}: exit code {exitCode}; stderr: {lb.StandardError}");
        Assert.True(stderr.Count == 1, $"{problem}: {stderr.Count} lines on stderr:\n{lb.StandardError}");
        Assert.Contains(path, stderr[0]);
        Assert.Contains(expected, stderr[0]);
        Assert.DoesNotContain("Exception", stderr[0]);
        Assert.DoesNotMatch(@"\bat [\w.`<>]+\(", stderr[0]); // a stack frame
        Assert.Equal("", lb.StandardOutput); // nothing logged: it never started
    }

    static TcpListener Hold()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    static int Port(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;
}
