using System.Text.Json;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Resilience;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Hostile;

// Contract, "What counts against a backend (issue 7)": nothing a client can cause counts
// against a backend, and other clients see no errors meanwhile. The harness: three recording
// backends behind the real balancer, all healthy before the test starts; a well-behaved
// client that runs during the hostile action (and a while after it, so an ejection it caused
// would show); and the checks every hostile test ends with:
//   - no backend changed state: /status state and failures as before, no "is now" log line;
//   - the well-behaved client saw zero errors;
//   - (where it applies) no backend saw the hostile request at all.
public sealed class HostileHarness : IAsyncDisposable
{
    readonly Dictionary<string, (string State, long Failures)> _before;
    readonly int _stateLinesBefore;
    readonly List<string> _problems = [];

    HostileHarness(Balancer lb, RecordingBackend[] backends, Dictionary<string, (string, long)> before, int stateLinesBefore)
    {
        Lb = lb;
        Backends = backends;
        _before = before;
        _stateLinesBefore = stateLinesBefore;
    }

    public Balancer Lb { get; }
    public IReadOnlyList<RecordingBackend> Backends { get; }
    public Uri Client => Lb.App.ClientUri();
    public CalmClient? Calm { get; private set; }

    /// <summary>The HTTP version the well-behaved client speaks (2.0 for an h2c listener).</summary>
    public Version CalmVersion { get; set; } = System.Net.HttpVersion.Version11;

    /// <summary>Said first in a failure message (e.g. the fuzz seed, to replay the run).</summary>
    public string? Context { get; set; }

    /// <summary>Every request a backend got that the well-behaved client did not send.</summary>
    public IReadOnlyList<SeenRequest> HostileSeen => Backends.SelectMany(b => b.Seen).Where(s => !s.IsCalm).ToList();

    public static async Task<HostileHarness> StartAsync(Action<JsonObject>? configure = null, RequestDelegate? handler = null)
    {
        var backends = await Task.WhenAll(new[] { "a", "b", "c" }.Select(n => RecordingBackend.StartAsync(n, handler)));
        var config = Balancer.Config(backends.Select(b => b.Backend).ToArray());
        configure?.Invoke(config);
        var lb = await Balancer.StartAsync(config);
        // The first probe round (at startup) makes every backend healthy; from then on nothing
        // should change it: probes run every hour.
        var before = new Dictionary<string, (string, long)>();
        foreach (var b in backends)
        {
            var entry = await lb.WaitForStatusAsync(b.Backend, s => s.State() == "healthy");
            before[b.Url] = (entry.State(), entry.Failures());
        }
        return new HostileHarness(lb, backends, before, StateLines(lb).Count);
    }

    static List<LogLine> StateLines(Balancer lb) =>
        lb.Logs.Lines.Where(l => l.Message.StartsWith("Backend ", StringComparison.Ordinal) && l.Message.Contains(" is now ", StringComparison.Ordinal)).ToList();

    /// <summary>Runs the hostile action while the well-behaved client sends GETs: it has made
    /// some before the action starts and makes <paramref name="after"/> more once it ends.</summary>
    public async Task<T> UnderFireAsync<T>(Func<Task<T>> hostile, int after = 30)
    {
        Calm = CalmClient.Start(Client, version: CalmVersion);
        try
        {
            await Calm.WaitForAsync(5);
            var result = await hostile();
            await Calm.WaitForAsync(after);
            return result;
        }
        finally
        {
            await Calm.StopAsync();
        }
    }

    public Task UnderFireAsync(Func<Task> hostile, int after = 30) =>
        UnderFireAsync(async () => { await hostile(); return true; }, after);

    /// <summary>Records a failed expectation; VerifyAsync reports them all at once, so one run
    /// tells everything that went wrong (what the client got, what a backend saw, /status).</summary>
    public void Expect(bool ok, string problem)
    {
        if (!ok) _problems.Add(problem);
    }

    /// <summary>No backend got any request but the well-behaved client's.</summary>
    public void ExpectNothingForwarded(string what)
    {
        var seen = HostileSeen;
        Expect(seen.Count == 0, $"{what} reached a backend:\n    " + string.Join("\n    ", seen.Take(10)));
    }

    /// <summary>No backend got a request whose target has /smuggled in it.</summary>
    public void ExpectNothingSmuggled()
    {
        var smuggled = Backends.SelectMany(b => b.Seen).Where(s => s.Target.Contains("/smuggled", StringComparison.Ordinal)).ToList();
        Expect(smuggled.Count == 0, "a request hidden in a body reached a backend as a request:\n    " + string.Join("\n    ", smuggled.Take(10)));
    }

    /// <summary>The checks every hostile test ends with (no backend changed state or counted a
    /// failure, the well-behaved client saw no error), then fails with every problem found.</summary>
    public async Task VerifyAsync()
    {
        // inFlight back to 0 on every backend: every outcome has reached the state task.
        foreach (var b in Backends)
        {
            try
            {
                await Lb.WaitForStatusAsync(b.Backend, s => s.InFlight() == 0);
            }
            catch (TimeoutException e)
            {
                Expect(false, $"{b.Url} still has requests in flight: {e.Message}");
            }
        }
        var status = await Lb.StatusAsync();
        var changed = false;
        foreach (var b in Backends)
        {
            var entry = await Lb.RequiredStatusAsync(b.Backend);
            var (state, failures) = _before[b.Url];
            var same = entry.State() == state && entry.Failures() == failures;
            changed |= !same;
            Expect(same, $"{b.Url} was {state} with {failures} failures, now {entry.State()} with {entry.Failures()} failures");
        }
        if (changed) _problems.Add("/status: " + JsonSerializer.Serialize(status));
        var changes = StateLines(Lb).Skip(_stateLinesBefore).Select(l => l.Message).ToList();
        Expect(changes.Count == 0, "backends changed state:\n    " + string.Join("\n    ", changes));
        if (Calm is { } calm) Expect(calm.Failed == 0 && calm.Done > 0, calm.Describe());
        Assert.True(_problems.Count == 0, (Context is null ? "" : Context + "\n") + string.Join("\n", _problems.Select(p => "- " + p)));
    }

    /// <summary>Sends the bytes on a new connection, reads the response, then waits (at most
    /// <paramref name="closeWithin"/>, 3 s by default) for the server to close the connection.
    /// The client never half-closes: Kestrel takes a FIN for a client that went away and aborts
    /// the request, so any closing is the server's. A request that the test expects to be
    /// answered normally says Connection: close.</summary>
    public async Task<RawExchange> SendRawAsync(string request, TimeSpan? closeWithin = null)
    {
        await using var client = await RawClient.ConnectAsync(Client);
        await client.SendAsync(request);
        await client.ReadFinalResponseAsync(TimeSpan.FromSeconds(10));
        return await client.ReadUntilCloseAsync(closeWithin ?? TimeSpan.FromSeconds(3));
    }

    public async ValueTask DisposeAsync()
    {
        if (Calm is not null) await Calm.DisposeAsync();
        await Lb.DisposeAsync();
        foreach (var b in Backends) await b.DisposeAsync();
    }
}
