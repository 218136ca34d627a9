using CsCheck;
using LoadBalancer.Admin;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// Issue 16: a pick reads the table's BackendIndex (O(log n)) instead of scanning every backend.
// This holds the index to the scan it replaced. Two tables get the same random sequence of
// inputs: picks (first attempts and retries that tried some backends, with and without a hash
// key or an affinity cookie), outcomes (some failing, so backends get ejected), probes, operator
// drains, reloads (backends added and removed, weights, limits, slow start, the policy), DNS
// discovery's addresses, client aborts, connection counts and clock steps, under each policy.
// One table picks as before the index (ReferencePicks: a scan of every backend and the policies'
// Choose over the span), the other through the index; their random draws come from the same
// seed. After every step: every answer is the same (backend, refusal, time waited), every
// backend's state is the same (in flight, round-robin's running weight, effective weight, slow
// start, health), /explain says the same, the index agrees with a scan of the backends
// (BackendIndex.Verify: the counts, the segment tree, the round-robin heaps), and the gauges the
// indexed table published are those of a scan.
public sealed class BackendIndexPropertyTests
{
    static readonly string[] Urls = ["http://a:1", "http://b:2", "http://c:3", "http://d:4", "http://e:5", "http://f:6"];
    static readonly BackendConfig Web = TestConfigs.Backend("http://web.test:80") with { Discover = true };
    static readonly string[] Addresses = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"];
    static readonly ulong[] Keys = [11, 22, 33, 44, 55];

    abstract record Op;
    sealed record AskOp(int TriedMask, int Key, int Cookie) : Op;  // Key 0: none; Cookie 0: none, -1: forged, else a backend's token
    sealed record ReleaseOp(int Index, int Outcome) : Op;
    sealed record ProbeOp(int Backend, bool Pass) : Op;
    sealed record DrainOp(int Backend, bool Drain) : Op;
    sealed record ReloadOp(Setup Setup) : Op;
    sealed record DiscoverOp(int Mask) : Op;
    sealed record AbortOp(int Index) : Op;
    sealed record ConnectionsOp(int Backend, int Delta) : Op;
    sealed record AdvanceOp(int Ms) : Op;
    sealed record ReadOp : Op; // /status and /explain, which warm slow start as a pick does

    // A configuration: which backends (a mask over Urls; the discovered host too), their weights
    // (1-5) and limits, the policy, slow start, affinity, bounded load.
    sealed record Setup(int Present, int[] Weights, int[] Limits, int Limit, int Policy, int SlowStartS, bool Affinity, bool Discover, bool Bounded)
    {
        public LbConfig Config()
        {
            var backends = Urls.Select((u, i) => (u, i)).Where(x => (Present >> x.i & 1) != 0 || x.i == 0 && (Present & 63) == 0)
                .Select(x => TestConfigs.Backend(x.u, Weights[x.i]) with { MaxInFlight = Limits[x.i] < 0 ? null : Limits[x.i] }).ToList();
            if (Discover) backends.Add(Web with { Weight = Weights[^1] });
            var c = TestConfigs.Create([.. backends]);
            return c with
            {
                Balancing = BalancingNames.All[Policy],
                HealthCheck = c.HealthCheck with { HealthyThreshold = 1, UnhealthyThreshold = 1 },
                PassiveHealth = new PassiveHealthConfig(2, TimeSpan.FromSeconds(3)) { MaxEjectionPercent = 60 },
                Admission = c.Admission with { MaxInFlightPerBackend = Limit, QueueSize = 3, QueueTimeout = TimeSpan.FromSeconds(2), SlowStart = TimeSpan.FromSeconds(SlowStartS) },
                Affinity = Affinity ? new AffinityConfig("lb", "a shared secret", null) : null,
                HashBalanceFactor = Bounded ? 1.25 : 0,
            };
        }
    }

    static readonly Gen<Setup> Setups = Gen.Select(Gen.Int[1, 63], Gen.Int[1, 5].Array[Urls.Length + 1], Gen.Int[-1, 3].Array[Urls.Length],
            Gen.Int[0, 3], Gen.Int[0, BalancingNames.All.Length - 1], Gen.Int[0, 3].Select(i => new[] { 0, 0, 1, 10 }[i]), Gen.Int[0, 7])
        .Select(t => new Setup(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6, (t.Item7 & 1) != 0, (t.Item7 & 2) != 0, (t.Item7 & 4) != 0));

    static readonly Gen<Op> Ops = Gen.Frequency(
        (12, Gen.Select(Gen.Frequency((3, Gen.Const(0)), (1, Gen.Int[1, 255])), Gen.Frequency((3, Gen.Const(0)), (1, Gen.Int[1, Keys.Length])), Gen.Frequency((4, Gen.Const(0)), (1, Gen.Int[-1, 6])))
            .Select(t => (Op)new AskOp(t.Item1, t.Item2, t.Item3))),
        (10, Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 2], (i, o) => (Op)new ReleaseOp(i, o))),
        (3, Gen.Select(Gen.Int[0, 9], Gen.Bool, (b, p) => (Op)new ProbeOp(b, p))),
        (1, Gen.Select(Gen.Int[0, 9], Gen.Bool, (b, d) => (Op)new DrainOp(b, d))),
        (1, Setups.Select(s => (Op)new ReloadOp(s))),
        (1, Gen.Int[0, 7].Select(m => (Op)new DiscoverOp(m))),
        (1, Gen.Int[0, 1000].Select(i => (Op)new AbortOp(i))),
        (1, Gen.Select(Gen.Int[0, 9], Gen.Int[-1, 2], (b, d) => (Op)new ConnectionsOp(b, d))),
        (3, Gen.Int[1, 2500].Select(ms => (Op)new AdvanceOp(ms))),
        (1, Gen.Const((Op)new ReadOp())));

    static readonly Outcome[] Outcomes = [Outcome.Response, Outcome.ConnectRefused, Outcome.ClientAbort];

    [Fact]
    public void Pick_AnySequenceUnderEveryPolicy_IndexAnswersAsTheScanDid()
    {
        Gen.Select(Setups, Gen.Int, Gen.Int[0, 2].Select(i => new[] { 1L << 32, 1, 3 }[i]), Ops.Array[1, 150])
            .Sample((setup, seed, rebaseAt, ops) => Run(setup, seed, rebaseAt, ops), iter: 600, threads: 1);
    }

    sealed class Side(BackendTable table, RouteFactory routes)
    {
        public BackendTable Table { get; } = table;
        public RouteFactory Routes { get; } = routes;
        public List<Ask> Asks { get; } = [];
    }

    static void Run(Setup setup, int seed, long rebaseAt, Op[] ops)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var config = setup.Config();
        using var metrics = new LbMetrics($"index-property-{Guid.NewGuid()}");
        Side New(bool reference, LbMetrics? m)
        {
            var routes = new RouteFactory();
            return new Side(new BackendTable(config, routes.Create, time, _ => { }, m, new Random(seed)) { ReferencePicks = reference }, routes);
        }
        var scan = New(reference: true, null);
        var index = New(reference: false, metrics);
        index.Table.Index.RoundRobin.RebaseAt = rebaseAt;
        Side[] both = [scan, index];
        var held = new List<int>(); // asks answered with a backend, outcome not told yet
        var seen = new HashSet<int>(); // asks answered, compared once

        foreach (var op in ops)
        {
            switch (op)
            {
                case AskOp a:
                    foreach (var s in both)
                    {
                        var all = s.Routes.All;
                        var tried = a.TriedMask == 0 ? null : all.Where((_, i) => (a.TriedMask >> (i % 8) & 1) != 0).ToArray();
                        var entries = s.Table.Entries;
                        var cookie = a.Cookie switch
                        {
                            0 => null,
                            -1 => new string('x', LoadBalancer.Balancing.Affinity.TokenLength),
                            var k => entries[(k - 1) % entries.Count].AffinityToken,
                        };
                        s.Asks.Add(Ask.Send(s.Table, tried, new RequestKey(a.Key == 0 ? null : Keys[a.Key - 1], cookie)));
                    }
                    break;
                case ReleaseOp r when held.Count > 0:
                    var done = held[r.Index % held.Count];
                    held.RemoveAt(r.Index % held.Count);
                    var outcome = Outcomes[r.Outcome];
                    foreach (var s in both) s.Table.Apply(new RequestOutcome(s.Asks[done].Answer.Backend!, outcome, outcome == Outcome.Response ? 200 : 0));
                    break;
                case ProbeOp p:
                    foreach (var s in both)
                    {
                        var e = s.Table.Entries[p.Backend % s.Table.Entries.Count];
                        s.Table.Apply(new ProbeResult(e.Route, time.GetUtcNow(), p.Pass ? 200 : null, TimeSpan.Zero, p.Pass ? null : "refused"));
                    }
                    break;
                case DrainOp d:
                    foreach (var s in both) s.Table.Drain(s.Table.Entries[d.Backend % s.Table.Entries.Count].Route.Url, d.Drain);
                    break;
                case ReloadOp c:
                    config = c.Setup.Config();
                    foreach (var s in both) s.Table.Reconcile(config);
                    break;
                case DiscoverOp m:
                    var addresses = Addresses.Where((_, i) => (m.Mask >> i & 1) != 0).ToArray();
                    foreach (var s in both) s.Table.Apply(new MembershipChanged(Web.Key, addresses, null));
                    break;
                case AbortOp x when index.Asks.Any(k => !k.Answered):
                    var waiting = Enumerable.Range(0, index.Asks.Count).Where(i => !index.Asks[i].Answered).ToArray();
                    var leaving = waiting[x.Index % waiting.Length];
                    foreach (var s in both)
                    {
                        s.Asks[leaving].Abort();
                        s.Table.Apply(new PickCancelled(s.Asks[leaving].Waiter!));
                    }
                    break;
                case ConnectionsOp n:
                    foreach (var s in both) s.Table.ApplyConnections(s.Table.Entries[n.Backend % s.Table.Entries.Count].Route.Id, n.Delta);
                    break;
                case AdvanceOp t:
                    time.Advance(TimeSpan.FromMilliseconds(t.Ms));
                    foreach (var s in both) s.Table.Tick();
                    break;
                case ReadOp:
                    var (explainScan, explainIndex) = (scan.Table.Explain(), index.Table.Explain());
                    Assert.Equal(explainScan.Candidates, explainIndex.Candidates);
                    if (config.Balancing is not (BalancingNames.Random or BalancingNames.PowerOfTwo)) // those draw from a dry-run Random of their own
                        Assert.Equal((explainScan.Chosen, explainScan.Rule), (explainIndex.Chosen, explainIndex.Rule));
                    Assert.Equal(Status(scan.Table), Status(index.Table));
                    break;
            }
            Check(scan, index, held, seen, metrics, op);
        }
    }

    static string[] Status(BackendTable t) =>
        t.Snapshot().Backends.Select(b => $"{b.Url} {b.Address} {b.State} {b.InFlight} {b.EffectiveWeight} {b.Requests} {b.Failures}").ToArray();

    static void Check(Side scan, Side index, List<int> held, HashSet<int> seen, LbMetrics metrics, Op after)
    {
        for (var i = 0; i < scan.Asks.Count; i++)
        {
            var (s, x) = (scan.Asks[i], index.Asks[i]);
            Assert.True(s.Answered == x.Answered, $"ask {i} answered {s.Answered} by the scan, {x.Answered} by the index (after {after})");
            if (!s.Answered || !seen.Add(i)) continue;
            Assert.True((s.Answer.Backend?.Url, s.Answer.Backend?.Id, s.Answer.Refused, s.Answer.Waited) == (x.Answer.Backend?.Url, x.Answer.Backend?.Id, x.Answer.Refused, x.Answer.Waited),
                $"ask {i}: the scan gave {s.Answer.Backend?.Url ?? s.Answer.Refused.ToString()}, the index {x.Answer.Backend?.Url ?? x.Answer.Refused.ToString()} (after {after})");
            if (s.Answer.Backend is not null) held.Add(i);
        }
        Assert.Equal(scan.Table.QueueLength, index.Table.QueueLength);
        Assert.Equal(Entries(scan.Table), Entries(index.Table));
        Assert.Null(index.Table.Index.Verify());
        Queries(index.Table.Index);
        index.Table.PublishGauges();
        Assert.Equal(index.Table.Entries.Select(e => new BackendGauges(e.Route.Url, e.InFlight, e.OpenConnections, e.Eligible, e.Route.Address)),
            metrics.Published);
    }

    // The index's answers to the policies' questions, each against a scan of its candidates in
    // order: the k-th for every k, the weighted draw at both ends of every candidate's share, the
    // least loaded from every starting point.
    static void Queries(BackendIndex index)
    {
        var candidates = index.Candidates().ToArray();
        Assert.Equal(candidates.Length, index.Count);
        long sum = 0;
        for (var k = 0; k < candidates.Length; k++)
        {
            var e = candidates[k];
            Assert.Same(e, index.Nth(k));
            Assert.Same(e, index.ByWeight(sum));
            Assert.Same(e, index.ByWeight(sum + e.EffectiveWeight - 1));
            sum += e.EffectiveWeight;
            var least = e;
            for (var i = 1; i < candidates.Length; i++)
                if (candidates[(k + i) % candidates.Length] is var x && LoadBalancer.Balancing.Load.Less(x, least)) least = x;
            Assert.Same(least, index.LeastLoaded(k));
        }
        Assert.Equal(sum, index.TotalWeight);
    }

    static string[] Entries(BackendTable t) =>
        t.Entries.Select(e => $"{e.Route.Url} {e.Route.Address} {e.State} inFlight {e.InFlight}/{e.MaxInFlight} running {e.CurrentWeight} weight {e.EffectiveWeight} warming {e.WarmingSince} open {e.OpenConnections}").ToArray();
}
