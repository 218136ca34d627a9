using LoadBalancer.Admin;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// /explain, /events and drain as rules: the table called directly, as the state task would.
public sealed class ExplainEventsDrainTests
{
    const string A = "http://a:1", B = "http://b:2", C = "http://c:3";

    readonly FakeTimeProvider _time = new();
    readonly RouteFactory _routes = new();
    readonly List<StateChange> _changes = [];

    BackendTable Table(LbConfig config, Random? random = null) => new(config, _routes.Create, _time, _changes.Add, random: random);

    static LbConfig Weighted(string balancing) =>
        TestConfigs.Create(TestConfigs.Backend(A, 5), TestConfigs.Backend(B, 1), TestConfigs.Backend(C, 1)) with { Balancing = balancing };

    void Probe(string url, bool pass, BackendTable table) =>
        table.Apply(new ProbeResult(_routes[url], _time.GetUtcNow(), pass ? 200 : null, TimeSpan.FromMilliseconds(2), pass ? null : "connection refused"));

    static List<string> Picks(BackendTable table, int n, Action? between = null)
    {
        var order = new List<string>();
        for (var i = 0; i < n; i++)
        {
            between?.Invoke();
            var pick = table.Choose(null).Backend!;
            order.Add(pick.Url);
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
        }
        return order;
    }

    // ---- explain ---------------------------------------------------------------------------------

    [Theory]
    [InlineData(BalancingNames.RoundRobin)]
    [InlineData(BalancingNames.LeastConnections)]
    [InlineData(BalancingNames.PowerOfTwo)]
    [InlineData(BalancingNames.Random)]
    public void Explain_100TimesBeforeEachPick_PickOrderUnchanged(string balancing)
    {
        var plain = Table(Weighted(balancing), new Random(7));
        var explained = Table(Weighted(balancing), new Random(7));

        var expected = Picks(plain, 20);
        var got = Picks(explained, 20, () => { for (var i = 0; i < 100; i++) explained.Explain(); });

        Assert.Equal(expected, got);
        if (balancing == BalancingNames.RoundRobin) // nginx's order for weights 5,1,1: a a b a c a a
            Assert.Equal([A, A, B, A, C, A, A], expected.Take(7));
    }

    [Fact]
    public void Explain_RoundRobin_ChosenIsTheNextPickAndTheRuleShowsTheRunningWeights()
    {
        var table = Table(Weighted(BalancingNames.RoundRobin));
        for (var i = 0; i < 7; i++)
        {
            var x = table.Explain();
            var next = table.Choose(null).Backend!;
            Assert.Equal(next.Url, x.Chosen);
        }
        var rule = table.Explain().Rule;
        Assert.StartsWith("smooth weighted round-robin: running weight + weight = http://a:1 0+5=5, http://b:2 0+1=1, http://c:3 0+1=1", rule);
        Assert.Equal("smooth weighted round-robin: running weight + weight = http://a:1 0+5=5, http://b:2 0+1=1, http://c:3 0+1=1; the largest is http://a:1 (5), which then drops by the total weight 7 to -2", rule);
    }

    [Fact]
    public void Explain_LeastConnections_ScoresAndTheLowestWithoutTakingASlot()
    {
        var table = Table(Weighted(BalancingNames.LeastConnections));
        table.Choose(null); // a: 1 in flight
        var x = table.Explain();
        Assert.Equal(B, x.Chosen);
        Assert.Contains("http://a:1 1/5", x.Rule);
        Assert.Contains("the lowest is http://b:2 (0/1)", x.Rule);
        Assert.Equal([1, 0, 0], x.Candidates.Select(c => c.InFlight));
        Assert.Equal([1, 0, 0], table.Explain().Candidates.Select(c => c.InFlight)); // no slot taken by the first explain
    }

    [Fact]
    public void Explain_PowerOfTwo_DrawsNothingFromTheLiveSource()
    {
        var live = new CountingRandom();
        var table = Table(Weighted(BalancingNames.PowerOfTwo), live);
        var x = table.Explain();
        Assert.Equal(0, live.Calls);
        Assert.Matches(@"^power-of-two \(a dry-run draw, not the live one\): sampled http://\S+ \(0/\d\) and http://\S+ \(0/\d\); http://\S+ wins: ", x.Rule);
        table.Choose(null);
        Assert.Equal(2, live.Calls);
    }

    [Fact]
    public void Explain_EachBackend_ReasonSaysWhyInWords()
    {
        var config = TestConfigs.Create(A, B, C);
        var table = Table(config);
        Probe(B, false, table);
        Probe(B, false, table);
        for (var i = 0; i < 3; i++) table.Apply(new RequestOutcome(table.Choose([_routes[B], _routes[C]]).Backend!, Outcome.ConnectRefused, 0));
        table.Drain(C, true);

        var x = table.Explain();

        Assert.Null(x.Chosen);
        Assert.Equal("no eligible backend: a request now gets 503 no healthy backends", x.Rule);
        var until = Durations.Clock(_time.GetUtcNow() + config.PassiveHealth.EjectFor);
        Assert.Equal($"not eligible: ejected until {until} after 3 failed requests (connection refused)", x.Candidates[0].Reason);
        Assert.StartsWith("not eligible: unhealthy, 0 of 2 passed probes needed to come back", x.Candidates[1].Reason);
        Assert.StartsWith("not eligible: drained by the operator", x.Candidates[2].Reason);
        Assert.All(x.Candidates, c => Assert.False(c.Eligible));
        Assert.All(x.Candidates, c => Assert.Equal((c.Weight, 0), (c.EffectiveWeight, c.MaxInFlight)));
    }

    [Fact]
    public void Explain_EveryBackendAtItsLimit_NoChoiceTheRequestWouldQueue_AndTheLimitIsShown()
    {
        var config = TestConfigs.Create(A, B) with { Admission = AdmissionConfig.Default with { MaxInFlightPerBackend = 1 } };
        var table = Table(config);
        table.Choose(null);
        table.Choose(null);

        var x = table.Explain();

        Assert.Null(x.Chosen);
        Assert.Equal("every eligible backend is at its maxInFlight: a request now waits in the queue (0 waiting, queue.size 1000)", x.Rule);
        Assert.All(x.Candidates, c => Assert.Equal((1, 1, true), (c.InFlight, c.MaxInFlight, c.Eligible)));
        Assert.EndsWith("; at its limit (maxInFlight 1): no new request until one ends", x.Candidates[0].Reason);
        Assert.Equal([1, 1], table.Explain().Candidates.Select(c => c.InFlight)); // still no slot taken
    }

    [Fact]
    public void Explain_SlowStart_EffectiveWeightOfTheWarmingBackend()
    {
        var config = TestConfigs.Create(A, B) with { Admission = AdmissionConfig.Default with { SlowStart = TimeSpan.FromSeconds(10) } };
        var table = Table(config);
        table.Drain(A, true);
        table.Drain(A, false); // eligible again: warms up from 10%
        _time.Advance(TimeSpan.FromSeconds(5));

        var a = table.Explain().Candidates[0];

        Assert.InRange(a.EffectiveWeight, 0.5, 0.6); // 10% + 90% * 5/10
        Assert.Contains("warming up (slowStart): effective weight 0.55 of 1", a.Reason);
    }

    // ---- reasons and events -----------------------------------------------------------------------

    [Fact]
    public void StateReason_EveryRule_TextEndsWithItsRuleInBrackets()
    {
        StateReason[] all =
        [
            new StateReason.Added(), new StateReason.FirstProbePassed(200), new StateReason.ProbesPassed(2, 200),
            new StateReason.ProbesFailed(2, null, "connection refused"), new StateReason.Ejected(3, Outcome.ConnectRefused, TimeSpan.FromSeconds(30), false),
            new StateReason.EjectionEnded(), new StateReason.RemovedFromConfig(1), new StateReason.BackInConfig(), new StateReason.Drained(),
            new StateReason.OperatorDrain(2), new StateReason.DrainComplete(), new StateReason.OperatorUndrain(),
            new StateReason.Discovered("10.0.0.1:80"), new StateReason.VanishedFromDns("10.0.0.1:80", 0),
        ];
        var kinds = typeof(StateReason).GetNestedTypes().Where(t => t.IsSubclassOf(typeof(StateReason))).ToHashSet();
        Assert.Equal(kinds, all.Select(r => r.GetType()).ToHashSet()); // a new rule fails here until it is listed
        foreach (var r in all)
        {
            Assert.False(string.IsNullOrWhiteSpace(r.Rule));
            Assert.EndsWith($" [{r.Rule}]", r.Text);
        }
    }

    [Fact]
    public void ProbesFailed_Change_CarriesTheFailedProbesAsEvidence()
    {
        var table = Table(TestConfigs.Create(A, B));
        Probe(A, true, table);
        Probe(A, false, table);
        _time.Advance(TimeSpan.FromSeconds(10));
        Probe(A, false, table);

        var down = _changes[^1];
        Assert.Equal((BackendHealth.Healthy, "unhealthy"), (down.From, down.To));
        Assert.Equal(StateReason.UnhealthyRule, down.Why.Rule);
        Assert.Equal(["probe connection refused", "probe connection refused"], down.Evidence.Select(e => e.ToString()));
        Assert.Equal(_time.GetUtcNow(), down.Evidence[^1].At);
    }

    [Fact]
    public void Ejected_Change_CarriesTheFailedRequestsAsEvidence()
    {
        var table = Table(TestConfigs.Create(A));
        table.Apply(new RequestOutcome(table.Choose(null).Backend!, Outcome.ConnectRefused, 0));
        table.Apply(new RequestOutcome(table.Choose(null).Backend!, Outcome.Response, 200)); // resets the run
        for (var i = 0; i < 3; i++) table.Apply(new RequestOutcome(table.Choose(null).Backend!, i == 0 ? Outcome.BadGatewayStatus : Outcome.ResponseTimeout, i == 0 ? 503 : 0));

        var ejected = _changes[^1];
        Assert.Equal("ejected", ejected.To);
        Assert.Equal(["request 502/503/504 status", "request response timeout", "request response timeout"], ejected.Evidence.Select(e => e.ToString()));
        Assert.Equal(503, ejected.Evidence[0].Status);
    }

    [Fact]
    public void Events_Since_ExclusiveOldestFirstNextIsTheLastSeq()
    {
        var table = Table(TestConfigs.Create(A, B));
        Probe(A, true, table);
        Probe(B, true, table);
        Probe(B, false, table);
        Probe(B, false, table);

        var all = table.Events.Since(0);
        Assert.Equal([1L, 2, 3], all.Events.Select(e => e.Seq));
        Assert.Equal(3, all.Next);
        var after1 = table.Events.Since(1);
        Assert.Equal([2L, 3], after1.Events.Select(e => e.Seq));
        var none = table.Events.Since(3);
        Assert.Empty(none.Events);
        Assert.Equal(3, none.Next);
        Assert.Equal((B, "healthy", "unhealthy"), (all.Events[2].Backend.Url, all.Events[2].From.Label(), all.Events[2].To));
    }

    [Fact]
    public void Events_MoreThan1000_KeepsTheLast1000()
    {
        var table = Table(TestConfigs.Create(A, B));
        for (var i = 0; i < 700; i++)
        {
            table.Drain(A, true);
            table.Drain(A, false);
        }
        var page = table.Events.Since(0);
        Assert.Equal(EventLog.Capacity, page.Events.Length);
        Assert.Equal(2100 - 999, page.Events[0].Seq); // 3 changes a round (draining, drained, undrained)
        Assert.Equal(2100, page.Next);
    }

    // ---- drain -------------------------------------------------------------------------------------

    [Fact]
    public void Drain_InFlightRequests_NoNewPicksThenDrainedEventWhenTheLastEnds()
    {
        var table = Table(TestConfigs.Create(A, B));
        var first = table.Choose(null).Backend!; // a
        Assert.Equal(A, first.Url);

        Assert.True(table.Drain(A, true));
        Assert.Equal(("draining", StateReason.DrainRule), (_changes[^1].To, _changes[^1].Why.Rule));
        Assert.Equal([B], Picks(table, 4).Distinct());
        Assert.Equal(BackendHealth.Draining, table.Entries[0].State);

        table.Apply(new RequestOutcome(first, Outcome.Response, 200));
        var drained = _changes[^1];
        Assert.Equal((A, "draining", "drained"), (drained.Backend.Url, drained.From.Label(), drained.To));
        Assert.Contains(table.Entries, e => e.Route.Url == A); // stays until undrained

        Assert.True(table.Drain(A, false));
        Assert.Equal("unknown", _changes[^1].To);
        Assert.Contains(A, Picks(table, 2));
    }

    [Fact]
    public void Drain_NothingInFlight_DrainedAtOnce_AndTwiceIsOnce()
    {
        var table = Table(TestConfigs.Create(A, B));
        table.Drain(A, true);
        table.Drain(A, true);
        Assert.Equal(["draining", "drained"], _changes.Select(c => c.To));
    }

    [Fact]
    public void Drain_UnknownUrl_FalseAndNothingChanges()
    {
        var table = Table(TestConfigs.Create(A));
        Assert.False(table.Drain("http://nope:1", true));
        Assert.False(table.Drain("not a url", true));
        Assert.Empty(_changes);
        Assert.True(table.Drain("HTTP://A:1/", true)); // the same backend, spelt otherwise
    }

    [Fact]
    public void Reload_KeepingADrainedBackend_KeepsTheDrain()
    {
        var config = TestConfigs.Create(A, B);
        var table = Table(config);
        table.Drain(A, true);
        table.Reconcile(config with { Backends = [TestConfigs.Backend(A, 3), TestConfigs.Backend(B)] });
        Assert.Equal(BackendHealth.Draining, table.Entries.Single(e => e.Route.Url == A).State);
        Assert.Equal([B], Picks(table, 4).Distinct());
    }

    sealed class CountingRandom : Random
    {
        public int Calls;
        public override int Next(int maxValue) { Calls++; return base.Next(maxValue); }
        public override long NextInt64(long maxValue) { Calls++; return base.NextInt64(maxValue); }
    }
}
