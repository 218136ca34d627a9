using System.Collections.Concurrent;
using System.Diagnostics;

namespace LoadBalancer.Tests.Walkthrough;

// A file-based app from docs/ (`dotnet run docs/minimal/minimal.cs`), as a reader runs it: built
// once per test run with `dotnet build FILE -o DIR` (into the test's bin folder), then started as
// `dotnet DIR/NAME.dll args...` with stdout and stderr captured. A test waits for an output line
// instead of sleeping. Tests that use it share one collection, so two builds never compete for
// the machine's cores.
public sealed class FileApp : IAsyncDisposable
{
    public const string Collection = "file-based apps";

    static readonly ConcurrentDictionary<string, Lazy<Task<string>>> Builds = new();

    readonly Process _process;
    readonly List<string> _stdout = [];
    readonly List<string> _stderr = [];
    readonly Lock _gate = new();
    Task _exited = Task.CompletedTask;
    TaskCompletionSource _changed = NewSignal(); // completed (and replaced) on every new stdout line

    FileApp(Process process) => _process = process;

    public string StandardOutput { get { lock (_gate) return string.Join("\n", _stdout); } }
    public string StandardError { get { lock (_gate) return string.Join("\n", _stderr); } }
    public int ExitCode => _process.ExitCode;

    /// <summary>Builds docs/&lt;relative path&gt; once per test run; returns the dll.</summary>
    public static Task<string> BuildAsync(string relativePath) =>
        Builds.GetOrAdd(relativePath, p => new Lazy<Task<string>>(() => DoBuildAsync(p))).Value;

    static async Task<string> DoBuildAsync(string relativePath)
    {
        var source = Path.Combine(DocsLinksTests.RepoRoot(), relativePath);
        var name = Path.GetFileNameWithoutExtension(source);
        var output = Path.Combine(AppContext.BaseDirectory, "fileapps", name);
        var info = Dotnet("build", source, "-o", output, "--nologo", "-v", "q", "-clp:ErrorsOnly");
        using var build = Process.Start(info)!;
        var stdout = build.StandardOutput.ReadToEndAsync();
        var stderr = build.StandardError.ReadToEndAsync();
        await build.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        if (build.ExitCode != 0)
            throw new InvalidOperationException($"dotnet build {relativePath} failed ({build.ExitCode}):\n{await stdout}\n{await stderr}");
        return Path.Combine(output, name + ".dll");
    }

    /// <summary>Starts the built app with these arguments.</summary>
    public static FileApp Start(string dll, params string[] args)
    {
        var info = Dotnet(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var app = new FileApp(process);
        process.OutputDataReceived += (_, e) => app.Add(app._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => app.Add(app._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        app._exited = process.WaitForExitAsync(); // the exit, and the end of both streams
        return app;
    }

    /// <summary>Runs the built app to its end; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string dll, params string[] args)
    {
        await using var app = Start(dll, args);
        await app.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (app.ExitCode, app.StandardOutput, app.StandardError);
    }

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    void Add(List<string> lines, string? line)
    {
        if (line is null) return;
        TaskCompletionSource changed;
        lock (_gate)
        {
            lines.Add(line);
            changed = _changed;
            _changed = NewSignal();
        }
        changed.TrySetResult();
    }

    /// <summary>The first stdout line that contains <paramref name="text"/>, once it is there.</summary>
    public async Task<string> WaitForLineAsync(string text, TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        var expired = Task.Delay(Timeout.Infinite, timeout.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (_stdout.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } line) return line;
                changed = _changed.Task;
            }
            if (_exited.IsCompleted)
                throw new InvalidOperationException($"exited ({_process.ExitCode}) without \"{text}\":\n{StandardOutput}\n{StandardError}");
            if (expired.IsCompleted)
                throw new TimeoutException($"no \"{text}\" within {deadline.TotalSeconds} s:\n{StandardOutput}\n{StandardError}");
            await Task.WhenAny(changed, _exited, expired); // woken by a new line, the exit or the deadline
        }
    }

    public Task WaitForExitAsync(TimeSpan deadline) => _exited.WaitAsync(deadline);

    /// <summary>Sends SIGTERM, as `kill -TERM pid` (or a service manager) would.</summary>
    public async Task TerminateAsync()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", _process.Id.ToString() }, UseShellExecute = false })!;
        await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_exited.IsCompleted)
        {
            try { _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } // only this test's own process
            await _exited.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        _process.Dispose();
    }

    // The same dotnet host as the tests, without the variables `dotnet test` sets for MSBuild.
    static ProcessStartInfo Dotnet(params string[] args)
    {
        var host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)
            || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToArray())
            info.Environment.Remove(name);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        return info;
    }
}
