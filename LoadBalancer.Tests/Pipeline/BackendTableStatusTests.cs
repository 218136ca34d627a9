using LoadBalancer.Admin;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// What the table tells an operator, called directly as the state task would: each backend's
// last state change and ejection end (/status), the configuration's generation and last error
// (/status.config), and the gauges it publishes for /metrics.
public sealed class BackendTableStatusTests : IDisposable
{
    const string A = "http://a:1", B = "http://b:2";

    readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
    readonly RouteFactory _routes = new();
    readonly List<StateChange> _changes = [];
    readonly LbMetrics _metrics = new($"LoadBalancer.Test.{Guid.NewGuid():N}");

    public void Dispose() => _metrics.Dispose();

    BackendTable Table(params string[] urls) => new(TestConfigs.Create(urls), _routes.Create, _time, _changes.Add, _metrics);

    static BackendStatus Status(BackendTable table, string url) => table.Snapshot().Backends.Single(b => b.Url == url);

    static BackendRoute PickUntil(BackendTable table, string url)
    {
        for (var i = 0; i < 100; i++)
        {
            var pick = table.Choose(null).Backend ?? throw new InvalidOperationException("no backend eligible");
            if (pick.Url == url) return pick;
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
        }
        throw new InvalidOperationException($"{url} was never picked");
    }

    // ---- stateReason, ejectedUntil ---------------------------------------------------------

    [Fact]
    public void Snapshot_AtStartup_NoReasonAndNotEjected()
    {
        var table = Table(A);

        var a = Status(table, A);

        Assert.Null(a.LastChange);
        Assert.Null(a.EjectedUntil);
    }

    [Fact]
    public void Snapshot_EjectedBy503s_ReasonIsTheLoggedOneWithItsEvidenceAndTheEjectionEnd()
    {
        var table = Table(A, B); // consecutiveFailures 3, ejectFor 30s
        var now = _time.GetUtcNow();

        for (var i = 0; i < 3; i++) table.Apply(new RequestOutcome(PickUntil(table, A), Outcome.BadGatewayStatus, 503));
        var a = Status(table, A);

        Assert.Equal(BackendHealth.Ejected, a.State);
        Assert.Equal(now + TimeSpan.FromSeconds(30), a.EjectedUntil);
        var logged = Assert.Single(_changes);
        Assert.Same(logged, a.LastChange); // the very change that was logged, text formatted once
        Assert.Equal("3 failed requests in a row (last: 502/503/504 status); ejected for 30s [passiveHealth.consecutiveFailures]", a.LastChange!.Reason);
        // Data before text: the rule and its evidence, for anything that wants more than words.
        Assert.Equal(new StateReason.Ejected(3, Outcome.BadGatewayStatus, TimeSpan.FromSeconds(30), WasLastEligible: false), a.LastChange.Why);
    }

    [Fact]
    public void Snapshot_EjectionOver_NotEjectedAndTheReasonSaysSo()
    {
        var table = Table(A, B);
        for (var i = 0; i < 3; i++) table.Apply(new RequestOutcome(PickUntil(table, A), Outcome.ConnectRefused, 0));

        _time.Advance(TimeSpan.FromSeconds(30));
        var a = Status(table, A);

        Assert.Equal(BackendHealth.Unknown, a.State);
        Assert.Null(a.EjectedUntil);
        Assert.Equal("ejection ended [passiveHealth.ejectFor]", a.LastChange?.Reason);
        Assert.IsType<StateReason.EjectionEnded>(a.LastChange!.Why);
    }

    [Fact]
    public void Snapshot_ProbesFailed_ReasonNamesTheProbeError()
    {
        var table = Table(A);
        var route = _routes[A];

        for (var i = 0; i < 2; i++)
            table.Apply(new ProbeResult(route, _time.GetUtcNow(), null, TimeSpan.FromMilliseconds(1), "connection refused"));

        var a = Status(table, A);
        Assert.Equal(BackendHealth.Unhealthy, a.State);
        Assert.Equal("2 failed probes: connection refused [healthCheck.unhealthyThreshold]", a.LastChange?.Reason);
        Assert.Null(a.EjectedUntil);
    }

    // ---- config: loadedAt, generation, lastError --------------------------------------------

    [Fact]
    public void ConfigStatus_RejectedThenApplied_LastErrorShownUntilAFileApplies()
    {
        var table = Table(A);
        var started = _time.GetUtcNow();
        Assert.Equal(new ConfigStatus(started, 1, null), table.Snapshot().Config);

        _time.Advance(TimeSpan.FromMinutes(1));
        table.Reject("lb.json: healthCheck.interval: soon: not a duration");
        Assert.Equal(new ConfigStatus(started, 1, "lb.json: healthCheck.interval: soon: not a duration"), table.Snapshot().Config);

        _time.Advance(TimeSpan.FromMinutes(1));
        table.Reconcile(TestConfigs.Create(A, B));
        Assert.Equal(new ConfigStatus(_time.GetUtcNow(), 2, null), table.Snapshot().Config);
    }

    // ---- gauges --------------------------------------------------------------------------------

    [Fact]
    public void PublishGauges_AtStartup_EveryBackendAtZeroAndEligible()
    {
        Table(A, B);

        Assert.Equal([new(A, 0, 0, true), new(B, 0, 0, true)], _metrics.Published);
    }

    [Fact]
    public void PublishGauges_RemovedBackend_StaysWhileDrainingAndIsGoneOnceDrained()
    {
        var table = Table(A, B);
        var b = PickUntil(table, B);
        table.PublishGauges();
        Assert.Contains(new BackendGauges(B, 1, 0, true), _metrics.Published);

        table.Reconcile(TestConfigs.Create(A));
        table.PublishGauges();
        Assert.Contains(new BackendGauges(B, 1, 0, false), _metrics.Published); // draining: still counted

        table.Apply(new RequestOutcome(b, Outcome.Response, 200));
        table.PublishGauges();
        Assert.Equal([A], _metrics.Published.Select(g => g.Backend)); // drained: its series go
    }

    [Fact]
    public void PublishGauges_NothingMoved_TheSnapshotIsKept()
    {
        var table = Table(A);
        var before = _metrics.Published;

        table.Apply(new RequestOutcome(PickUntil(table, A), Outcome.Response, 200)); // back where it was
        table.PublishGauges();

        Assert.Same(before, _metrics.Published);
    }
}
