using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LoadBalancer.Tests.Support;

// The balancer as a user runs it: `dotnet LoadBalancer.dll --config PATH` in its own process.
// The test project references LoadBalancer, so the built dll sits next to the test assembly.
// With LB_SHIPPED set to an executable (the Native AOT build scripts/shipped-cmd.sh makes), that
// runs instead: .ci/run runs these process tests a second time on the shipped form that way.
// Captures stdout and stderr; a test can wait for a stdout line instead of sleeping.
public sealed class LbProcess : IAsyncDisposable
{
    readonly Process _process;
    readonly List<string> _stdout = [];
    readonly List<string> _stderr = [];
    readonly List<(string Text, TaskCompletionSource<string> Done)> _waiters = [];
    readonly Lock _gate = new();

    public static string DllPath => typeof(LoadBalancer.Program).Assembly.Location;

    /// <summary>The shipped executable to run instead of the dll (LB_SHIPPED), or null.</summary>
    public static string? Shipped => Environment.GetEnvironmentVariable("LB_SHIPPED") is { Length: > 0 } path ? path : null;

    LbProcess(Process process) => _process = process;

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    public string StandardOutput { get { lock (_gate) return string.Join("\n", _stdout); } }
    public string StandardError { get { lock (_gate) return string.Join("\n", _stderr); } }
    /// <summary>stderr as lines (empty lines kept, so an extra blank line counts).</summary>
    public IReadOnlyList<string> StandardErrorLines { get { lock (_gate) return _stderr.ToArray(); } }

    public static LbProcess Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    /// <summary>Starts it with these environment variables added (test seams read by Main).</summary>
    public static LbProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        Start(environment, workingDirectory: null, args);

    /// <summary>Starts it in this directory (where a relative --config, or the default lb.json, is found).</summary>
    public static LbProcess StartIn(string workingDirectory, params string[] args) =>
        Start(new Dictionary<string, string>(), workingDirectory, args);

    /// <summary>Starts it in this directory with these environment variables added.</summary>
    public static LbProcess StartIn(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        Start(environment, workingDirectory, args);

    static LbProcess Start(IReadOnlyDictionary<string, string> environment, string? workingDirectory, string[] args)
    {
        // Run under the same dotnet host as the tests (the testhost is started as "dotnet exec").
        var host = Shipped ?? (Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet");
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        // A shell without job control runs a background command (`dotnet test ... &` in a script or
        // a CI step) with SIGINT ignored, every process below inherits that, and .NET keeps an
        // inherited ignore: it installs no handler, so `kill -INT` would not reach the balancer at
        // all. Ctrl+C reaches a foreground process, whose SIGINT is at its default: start the
        // balancer that way, whatever started the tests (GNU env resets it before the exec).
        if (SigIntIgnored())
        {
            info.FileName = "env";
            info.ArgumentList.Add("--default-signal=INT");
            info.ArgumentList.Add(host);
        }
        if (Shipped is null) info.ArgumentList.Add(DllPath);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment.Remove("ASPNETCORE_URLS");
        foreach (var (name, value) in environment) info.Environment[name] = value;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var lb = new LbProcess(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lb.Add(lb._stdout, e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lb.Add(lb._stderr, e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return lb;
    }

    // Linux: the SigIgn mask in /proc/self/status, bit n-1 for signal n (SIGINT is 2).
    static bool SigIntIgnored()
    {
        if (!File.Exists("/proc/self/status")) return false;
        var mask = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return mask is not null && (Convert.ToUInt64(mask["SigIgn:".Length..].Trim(), 16) & (1UL << (2 - 1))) != 0;
    }

    void Add(List<string> lines, string line)
    {
        lock (_gate)
        {
            lines.Add(line);
            if (lines != _stdout) return;
            for (var i = _waiters.Count - 1; i >= 0; i--)
                if (line.Contains(_waiters[i].Text, StringComparison.Ordinal))
                {
                    _waiters[i].Done.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
        }
    }

    /// <summary>Completes when stdout has (or had) a line containing <paramref name="text"/>.</summary>
    public Task<string> WaitForOutputAsync(string text, TimeSpan? deadline = null)
    {
        var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_stdout.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) is { } seen) return Task.FromResult(seen);
            _waiters.Add((text, done));
        }
        // Fail fast if the process dies instead of printing the line.
        _ = _process.WaitForExitAsync().ContinueWith(_ =>
            done.TrySetException(new InvalidOperationException($"exited with {_process.ExitCode} before printing \"{text}\"; stderr: {StandardError}")),
            TaskScheduler.Default);
        return done.Task.WaitAsync(deadline ?? TimeSpan.FromSeconds(15));
    }

    /// <summary>Waits for the exit (and the end of its output); returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan? deadline = null)
    {
        await _process.WaitForExitAsync().WaitAsync(deadline ?? TimeSpan.FromSeconds(15));
        return _process.ExitCode;
    }

    /// <summary>Sends a POSIX signal ("TERM", "INT") as `kill -TERM pid` would.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, Id.ToString() }, UseShellExecute = false })!;
        await kill.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {Id} failed with {kill.ExitCode}");
    }

    /// <summary>A port that was free a moment ago (bound on port 0, then released).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true); // only this test's own process
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
    }
}
