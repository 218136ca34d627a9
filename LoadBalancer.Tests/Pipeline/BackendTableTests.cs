using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The rules, called directly as the state task would: thresholds, ejection, draining, picking,
// and that every state change is reported exactly once.
public sealed class BackendTableTests
{
    const string A = "http://a:1", B = "http://b:2", C = "http://c:3";

    readonly FakeTimeProvider _time = new();
    readonly RouteFactory _routes = new();
    readonly List<StateChange> _changes = [];

    BackendTable Table(LbConfig config) => new(config, _routes.Create, _time, _changes.Add);

    BackendTable Table(params string[] urls) => Table(TestConfigs.Create(urls));

    static BackendEntry Entry(BackendTable table, string url) => table.Entries.Single(e => e.Route.Url == url);

    void Probe(BackendTable table, string url, bool pass) =>
        table.Apply(new ProbeResult(_routes[url], _time.GetUtcNow(), pass ? 200 : 500, TimeSpan.FromMilliseconds(1), null));

    /// <summary>Picks until url is chosen (the policy decides the order), as a handler would.</summary>
    BackendRoute PickUntil(BackendTable table, string url)
    {
        for (var i = 0; i < 100; i++)
        {
            var pick = table.Choose(null).Backend ?? throw new InvalidOperationException("no backend eligible");
            if (pick.Url == url) return pick;
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200)); // release the others
        }
        throw new InvalidOperationException($"{url} was never picked");
    }

    /// <summary>One forwarded request to url that ended with kind.</summary>
    void Request(BackendTable table, string url, Outcome kind, int status = 0) =>
        table.Apply(new RequestOutcome(PickUntil(table, url), kind, status));

    List<string> Changes() => _changes.Select(c => $"{c.Backend.Url} {c.State.Label()}{(c.Removed ? " removed" : "")}").ToList();

    HashSet<string> PickMany(BackendTable table, int n)
    {
        var seen = new HashSet<string>();
        for (var i = 0; i < n; i++)
        {
            var pick = table.Choose(null).Backend!;
            seen.Add(pick.Url);
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
        }
        return seen;
    }

    // ---- active health -----------------------------------------------------------------------

    [Fact]
    public void Constructor_NewBackends_StartUnknownAndEligibleWithoutReporting()
    {
        var table = Table(A, B);

        Assert.All(table.Entries, e => Assert.Equal(BackendHealth.Unknown, e.State));
        Assert.Equal(new HashSet<string> { A, B }, PickMany(table, 2)); // unknown takes traffic
        Assert.Empty(_changes); // startup is not a change
    }

    [Fact]
    public void ApplyProbe_FirstPassWhileUnknown_HealthyAtOnce()
    {
        var table = Table(TestConfigs.Create(A) with { HealthCheck = TestConfigs.Create(A).HealthCheck with { HealthyThreshold = 5 } });

        Probe(table, A, pass: true);

        Assert.Equal(BackendHealth.Healthy, Entry(table, A).State);
        var change = Assert.Single(_changes);
        Assert.Equal(BackendHealth.Healthy, change.State);
        Assert.Contains("probe passed", change.Reason);
    }

    [Fact]
    public void ApplyProbe_WalkDownAndUp_ChangesAtTheThresholdsOnly()
    {
        var config = TestConfigs.Create(A, B);
        var table = Table(config with { HealthCheck = config.HealthCheck with { HealthyThreshold = 3, UnhealthyThreshold = 2 } });
        Probe(table, A, pass: true);
        Assert.Equal(["http://a:1 healthy"], Changes());

        Probe(table, A, pass: false);
        Assert.Equal(BackendHealth.Healthy, Entry(table, A).State); // 1 of 2
        Probe(table, A, pass: false);
        Assert.Equal(BackendHealth.Unhealthy, Entry(table, A).State);
        Assert.Contains("2 failed probes", _changes[^1].Reason);
        Assert.Equal(new HashSet<string> { B }, PickMany(table, 4)); // down gets nothing

        Probe(table, A, pass: false); // still down: no new change
        Probe(table, A, pass: true);
        Probe(table, A, pass: true);
        Assert.Equal(BackendHealth.Unhealthy, Entry(table, A).State); // 2 of 3
        Probe(table, A, pass: true);
        Assert.Equal(BackendHealth.Healthy, Entry(table, A).State);
        Assert.Contains("3 passed probes", _changes[^1].Reason);

        Assert.Equal(["http://a:1 healthy", "http://a:1 unhealthy", "http://a:1 healthy"], Changes());
    }

    [Fact]
    public void ApplyProbe_LastEligibleGoesDown_ChangeSaysNoneEligible()
    {
        var table = Table(A, B);
        Probe(table, A, pass: false);
        Probe(table, A, pass: false); // A down, B still eligible
        Assert.False(Assert.Single(_changes).NoneEligible);

        Probe(table, B, pass: false);
        Probe(table, B, pass: false); // B was the last: operators get a warning for this one

        Assert.Equal(["http://a:1 unhealthy", "http://b:2 unhealthy"], Changes());
        Assert.True(_changes[^1].NoneEligible);
        Assert.Null(table.Choose(null).Backend);
    }

    [Fact]
    public void ApplyProbe_PassBetweenFailures_StartsTheCountAgain()
    {
        var table = Table(A);
        Probe(table, A, pass: false);
        Probe(table, A, pass: true);
        Probe(table, A, pass: false);

        Assert.Equal(BackendHealth.Healthy, Entry(table, A).State); // never two failures in a row
        Probe(table, A, pass: false);
        Assert.Equal(BackendHealth.Unhealthy, Entry(table, A).State);
    }

    [Fact]
    public void ApplyProbe_UnknownFailsUnhealthyThreshold_Unhealthy()
    {
        var table = Table(A, B);

        Probe(table, A, pass: false);
        Assert.Equal(BackendHealth.Unknown, Entry(table, A).State);
        Probe(table, A, pass: false);

        Assert.Equal(BackendHealth.Unhealthy, Entry(table, A).State);
        Assert.Equal(["http://a:1 unhealthy"], Changes());
        Assert.Contains("status 500", _changes[0].Reason);
    }

    [Fact]
    public void ApplyProbe_ErrorText_IsTheReason()
    {
        var table = Table(TestConfigs.Create(A) with { HealthCheck = TestConfigs.Create(A).HealthCheck with { UnhealthyThreshold = 1 } });

        table.Apply(new ProbeResult(_routes[A], _time.GetUtcNow(), null, TimeSpan.Zero, "connection refused"));

        Assert.Contains("connection refused", Assert.Single(_changes).Reason);
        Assert.Equal("connection refused", table.Snapshot().Backends[0].LastProbe!.Error);
    }

    // ---- passive health ----------------------------------------------------------------------

    [Fact]
    public void ApplyOutcome_ConsecutiveFailures_EjectsAtTheThreshold()
    {
        var table = Table(A, B); // consecutiveFailures 3

        Request(table, A, Outcome.ConnectRefused);
        Request(table, A, Outcome.BadGatewayStatus, 503);
        Assert.Equal(BackendHealth.Unknown, Entry(table, A).State);
        Request(table, A, Outcome.ResponseTimeout);

        Assert.Equal(BackendHealth.Ejected, Entry(table, A).State);
        var change = Assert.Single(_changes);
        Assert.Equal(BackendHealth.Ejected, change.State);
        Assert.Contains("3 failed requests in a row", change.Reason);
        Assert.Contains("response timeout", change.Reason);
        Assert.Contains("30s", change.Reason);
        Assert.DoesNotContain("last eligible", change.Reason);
        Assert.Equal(new HashSet<string> { B }, PickMany(table, 4)); // ejected gets nothing
    }

    [Fact]
    public void ApplyOutcome_ClientAbort_NeverCounts()
    {
        var table = Table(A);

        for (var i = 0; i < 10; i++) Request(table, A, Outcome.ClientAbort);

        var entry = Entry(table, A);
        Assert.Equal(BackendHealth.Unknown, entry.State);
        Assert.Equal(0, entry.ConsecutiveFailures);
        Assert.Equal(0, entry.Failures);
        Assert.Equal(0, entry.InFlight); // but it does release the slot
        Assert.Empty(_changes);
    }

    [Fact]
    public void ApplyOutcome_ClientAbortBetweenFailures_DoesNotResetTheCount()
    {
        var table = Table(A, B);

        Request(table, A, Outcome.ConnectRefused);
        Request(table, A, Outcome.ConnectRefused);
        Request(table, A, Outcome.ClientAbort); // neither the backend's failure nor its success
        Request(table, A, Outcome.ConnectRefused);

        Assert.Equal(BackendHealth.Ejected, Entry(table, A).State);
    }

    [Fact]
    public void ApplyOutcome_NormalResponse_ResetsTheCount()
    {
        var table = Table(A, B);

        Request(table, A, Outcome.ConnectRefused);
        Request(table, A, Outcome.ResetBeforeHeaders);
        Request(table, A, Outcome.Response, 500); // a 500 is an answer, not a failure to answer
        Request(table, A, Outcome.ConnectRefused);
        Request(table, A, Outcome.ConnectRefused);

        Assert.Equal(BackendHealth.Unknown, Entry(table, A).State);
        Assert.Equal(4, Entry(table, A).Failures);
        Assert.Equal(5, Entry(table, A).Requests);
        Request(table, A, Outcome.ConnectRefused);
        Assert.Equal(BackendHealth.Ejected, Entry(table, A).State);
    }

    [Fact]
    public void ApplyOutcome_ReleasesInFlight()
    {
        var table = Table(A);
        var first = table.Choose(null).Backend!;
        var second = table.Choose(null).Backend!;
        Assert.Equal(2, Entry(table, A).InFlight);

        table.Apply(new RequestOutcome(first, Outcome.Response, 200));
        Assert.Equal(1, table.Snapshot().Backends[0].InFlight);
        table.Apply(new RequestOutcome(second, Outcome.ConnectRefused, 0));

        var status = table.Snapshot().Backends[0];
        Assert.Equal(0, status.InFlight);
        Assert.Equal(2, status.Requests);
        Assert.Equal(1, status.Failures);
    }

    [Fact]
    public void Choose_EjectForPassed_EligibleAgainAndReportedOnce()
    {
        var table = Table(A, B);
        for (var i = 0; i < 3; i++) Request(table, A, Outcome.ConnectRefused);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(30), table.NextEjectionEnd);

        _time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(1));
        table.Tick();
        Assert.Equal(BackendHealth.Ejected, table.Snapshot().Backends[0].State);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Contains(A, PickMany(table, 2)); // Choose itself notices the ejection ended
        table.Tick();

        Assert.Equal(BackendHealth.Unknown, Entry(table, A).State); // back to what probes said
        Assert.Equal(["http://a:1 ejected", "http://a:1 unknown"], Changes());
        Assert.Equal("ejection ended [passiveHealth.ejectFor]", _changes[^1].Reason);
        Assert.Equal(DateTimeOffset.MaxValue, table.NextEjectionEnd);
    }

    [Fact]
    public void Tick_EjectionEndedOnAnUnhealthyBackend_ReportsUnhealthy()
    {
        var table = Table(A, B);
        for (var i = 0; i < 3; i++) Request(table, A, Outcome.ConnectRefused);
        Probe(table, A, pass: false);
        Probe(table, A, pass: false); // goes down while ejected: not visible yet

        _time.Advance(TimeSpan.FromSeconds(30));
        table.Tick();

        Assert.Equal(["http://a:1 ejected", "http://a:1 unhealthy"], Changes());
        Assert.DoesNotContain(A, PickMany(table, 4));
    }

    [Fact]
    public void ApplyOutcome_FailuresWhileEjected_DoNotEjectAgain()
    {
        var table = Table(A, B);
        var inFlight = Enumerable.Range(0, 3).Select(_ => PickUntil(table, A)).ToList(); // three slow requests
        for (var i = 0; i < 3; i++) Request(table, A, Outcome.ConnectRefused);

        foreach (var route in inFlight) table.Apply(new RequestOutcome(route, Outcome.ResponseTimeout, 0));

        Assert.Equal(["http://a:1 ejected"], Changes());
        Assert.Equal(0, Entry(table, A).InFlight);
    }

    [Fact]
    public void ApplyOutcome_EjectingTheLastEligible_ReasonSaysSo()
    {
        var table = Table(A, B);
        Probe(table, B, pass: false);
        Probe(table, B, pass: false); // B is down: A is the only eligible one

        for (var i = 0; i < 3; i++) Request(table, A, Outcome.ConnectRefused);

        var change = _changes[^1];
        Assert.Equal(BackendHealth.Ejected, change.State);
        Assert.Contains("last eligible backend", change.Reason);
        Assert.Null(table.Choose(null).Backend); // clients get 503
    }

    // ---- reconcile ---------------------------------------------------------------------------

    [Fact]
    public void Reconcile_StayingBackend_KeepsHealthAndCounters()
    {
        var table = Table(A, B);
        Probe(table, A, pass: true);
        Request(table, A, Outcome.ConnectRefused);
        Request(table, A, Outcome.Response, 200);
        var routeBefore = _routes[A];
        _changes.Clear();

        table.Reconcile(TestConfigs.Create(TestConfigs.Backend(A, weight: 7), TestConfigs.Backend(C)));

        var a = Entry(table, A);
        Assert.Same(routeBefore, a.Route); // same pool
        Assert.Equal(BackendHealth.Healthy, a.State);
        Assert.Equal(2, a.Requests);
        Assert.Equal(1, a.Failures);
        Assert.Equal(7, a.Weight);
        Assert.False(_routes.IsDisposed(a.Route));
        Assert.DoesNotContain(_changes, c => c.Backend.Url == A);
    }

    [Fact]
    public void Reconcile_AddedBackend_StartsUnknownTakesTrafficReportedOnce()
    {
        var table = Table(A);

        table.Reconcile(TestConfigs.Create(A, B));

        Assert.Equal(BackendHealth.Unknown, Entry(table, B).State);
        var change = Assert.Single(_changes);
        Assert.Equal((B, BackendHealth.Unknown, "added [reload]"), (change.Backend.Url, change.State, change.Reason));
        Assert.Contains(B, PickMany(table, 2));
    }

    [Fact]
    public void Reconcile_RemovedIdleBackend_DrainsAndIsRemovedAtOnce()
    {
        var table = Table(A, B);
        var b = _routes[B];

        table.Reconcile(TestConfigs.Create(A));

        Assert.Equal(["http://b:2 draining", "http://b:2 draining removed"], Changes());
        Assert.DoesNotContain(table.Entries, e => e.Route == b);
        Assert.True(_routes.IsDisposed(b));
        Assert.Equal([A], table.Snapshot().Backends.Select(s => s.Url));
    }

    [Fact]
    public void Reconcile_RemovedBusyBackend_GetsNoPicksAndIsRemovedWhenItsLastRequestEnds()
    {
        var table = Table(A, B);
        var b1 = PickUntil(table, B);
        var b2 = PickUntil(table, B);

        table.Reconcile(TestConfigs.Create(A));

        Assert.Equal(["http://b:2 draining"], Changes());
        Assert.Contains("2 requests in flight", _changes[0].Reason);
        Assert.Equal(BackendHealth.Draining, table.Snapshot().Backends.Single(s => s.Url == B).State);
        Assert.Equal(new HashSet<string> { A }, PickMany(table, 5));
        Assert.DoesNotContain(b1, table.ProbePlan().Targets); // not probed either

        table.Apply(new RequestOutcome(b1, Outcome.Response, 200));
        Assert.False(_routes.IsDisposed(b1)); // one still running
        Assert.Single(_changes);
        table.Apply(new RequestOutcome(b2, Outcome.ConnectRefused, 0));

        Assert.True(_routes.IsDisposed(b1));
        Assert.Equal(["http://b:2 draining", "http://b:2 draining removed"], Changes());
        Assert.Equal([A], table.Entries.Select(e => e.Route.Url));
    }

    [Fact]
    public void DisposeRoutes_OneBackendStillDraining_EveryPoolDisposed()
    {
        var table = Table(A, B);
        var a = Entry(table, A).Route;
        var b = PickUntil(table, B);
        table.Reconcile(TestConfigs.Create(A)); // b drains: one request still in flight

        table.DisposeRoutes();

        Assert.True(_routes.IsDisposed(a));
        Assert.True(_routes.IsDisposed(b));
    }

    [Fact]
    public void Reconcile_DrainingBackendBackInTheConfig_TakesTrafficAgain()
    {
        var table = Table(A, B);
        var b = PickUntil(table, B);
        table.Reconcile(TestConfigs.Create(A));

        table.Reconcile(TestConfigs.Create(A, B));

        Assert.Same(b, Entry(table, B).Route);
        Assert.Equal(["http://b:2 draining", "http://b:2 unknown"], Changes());
        table.Apply(new RequestOutcome(b, Outcome.Response, 200));
        Assert.False(_routes.IsDisposed(b));
        Assert.Contains(B, PickMany(table, 2));
    }

    [Fact]
    public void Reconcile_SameUrlSpelledDifferently_IsTheSameBackend()
    {
        var table = Table("http://a:80/");
        Probe(table, "http://a:80/", pass: true);
        _changes.Clear();

        table.Reconcile(TestConfigs.Create("http://A"));

        Assert.Single(table.Entries);
        Assert.Equal(BackendHealth.Healthy, table.Entries[0].State);
        Assert.Empty(_changes);
        Assert.Equal(1, _routes.Count);
    }

    [Fact]
    public void Reconcile_NewPolicyAndForwarding_Applied()
    {
        var table = Table(A, B);

        table.Reconcile(TestConfigs.Create(A, B) with { Balancing = BalancingNames.LeastConnections, Retries = 5 });

        Assert.IsType<LoadBalancer.Balancing.LeastConnectionsPolicy>(table.Policy);
        Assert.Equal(5, table.Choose(null).Settings.Retries);
        Assert.Equal(BalancingNames.LeastConnections, table.Snapshot().Balancing);
    }

    [Fact]
    public void Choose_Exclude_SkipsTheTriedBackends()
    {
        var table = Table(A, B, C);
        var tried = new[] { _routes[A], _routes[C] };

        for (var i = 0; i < 4; i++)
        {
            var pick = table.Choose(tried);
            Assert.Equal(B, pick.Backend!.Url);
            table.Apply(new RequestOutcome(pick.Backend, Outcome.Response, 200));
        }
        Assert.Null(table.Choose([_routes[A], _routes[B], _routes[C]]).Backend);
    }

    [Fact]
    public void Choose_OneOfThreeDown_OtherTwoShareEvenly()
    {
        var table = Table(A, B, C);
        Probe(table, B, pass: false);
        Probe(table, B, pass: false);

        var picks = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var pick = table.Choose(null).Backend!;
            picks.Add(pick.Url);
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
        }

        Assert.Equal(5, picks.Count(p => p == A));
        Assert.Equal(5, picks.Count(p => p == C));
        Assert.All(picks.Zip(picks.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second)); // alternate
    }

    [Fact]
    public void ProbePlan_Configured_NamesEveryBackendAndTheSettings()
    {
        var config = TestConfigs.Create(A, B);
        var table = Table(config);

        var plan = table.ProbePlan();

        Assert.Equal([A, B], plan.Targets.Select(t => t.Url));
        Assert.Equal(config.HealthCheck, plan.Settings);
    }
}
