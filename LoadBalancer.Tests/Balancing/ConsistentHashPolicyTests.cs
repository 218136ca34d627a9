using CsCheck;
using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Pipeline;
using Microsoft.Extensions.Time.Testing;
using static LoadBalancer.Tests.Balancing.PolicyTestEntries;

namespace LoadBalancer.Tests.Balancing;

// consistent-hash: keys stay put unless their own backend leaves, weights share the keys,
// bounded load is never exceeded, and two balancers agree.
public sealed class ConsistentHashPolicyTests
{
    static ulong Key(int i) => KeyHash.Of($"user-{i}");

    static Dictionary<int, string> Assign(IBalancingPolicy policy, BackendEntry[] eligible, int keys) =>
        Enumerable.Range(0, keys).ToDictionary(i => i, i => Name(policy.Choose(eligible, new PickContext(Key(i)))));

    [Fact]
    public void Choose_OneOfFiveDown_MovesOnlyItsKeysAndTheyReturn()
    {
        var policy = new ConsistentHashPolicy(balanceFactor: 0);
        var all = Create(1, 1, 1, 1, 1);
        var before = Assign(policy, all, 1000);
        var down = all[2];

        var after = Assign(policy, all.Where(e => e != down).ToArray(), 1000);
        var moved = before.Keys.Where(k => before[k] != after[k]).ToList();
        Assert.All(moved, k => Assert.Equal(Name(down), before[k])); // only the down backend's keys moved
        Assert.Equal(before.Count(kv => kv.Value == Name(down)), moved.Count); // and all of them did
        Assert.InRange(moved.Count, 1, 1000 * (1 / 5.0 + 0.02));

        Assert.Equal(before, Assign(policy, all, 1000)); // back: every key returns
    }

    [Fact]
    public void Choose_KeysSpreadOverBackendsByWeight()
    {
        var counts = Assign(new ConsistentHashPolicy(0), Create(1, 1, 2), 6000).Values.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        Assert.InRange(counts["a"], 1200, 1800);
        Assert.InRange(counts["b"], 1200, 1800);
        Assert.InRange(counts["c"], 2700, 3300);
    }

    [Fact]
    public void Choose_TwoBalancersWithTheSameBackends_AgreeOnEveryKey()
    {
        var one = Assign(new ConsistentHashPolicy(1.25), Create(1, 1, 1, 1), 500);
        var other = Assign(new ConsistentHashPolicy(1.25), Create(1, 1, 1, 1), 500); // new entries, new policy: as another process
        Assert.Equal(one, other);
    }

    [Fact]
    public void Choose_NoKey_GoesRoundRobin()
    {
        Assert.Equal("a b c a b c", Picks(new ConsistentHashPolicy(1.25), Create(1, 1, 1), 6));
    }

    [Fact]
    public void Choose_KeyOverloaded_SpillsToItsNextBackendAndComesBack()
    {
        var policy = new ConsistentHashPolicy(1.25);
        var all = Create(1, 1, 1, 1);
        var home = policy.Choose(all, new PickContext(Key(7)));
        home.InFlight = 10; // others idle: mean with the new one is 11/4, capacity ceil(1.25 * 11/4) = 4
        var spilled = policy.Choose(all, new PickContext(Key(7)));
        Assert.NotSame(home, spilled);
        // The spill goes to the key's second choice: what it gets when its home is not eligible.
        Assert.Same(new ConsistentHashPolicy(0).Choose(all.Where(e => e != home).ToArray(), new PickContext(Key(7))), spilled);
        home.InFlight = 0;
        Assert.Same(home, policy.Choose(all, new PickContext(Key(7))));
    }

    // Bounded load under random traffic: random backends (weights 1-5), factor, keys, picks and
    // releases, some backends ineligible at each pick. After every pick the chosen backend holds
    // at most ceil(c x its weight's share of everything in flight) among the eligible.
    [Fact]
    public void Choose_RandomPicksAndReleases_NeverExceedsTheBound()
    {
        var op = Gen.Select(Gen.Int[0, 2], Gen.ULong, Gen.Int[0, 1 << 20]); // 0: release, 1-2: pick; key; which
        Gen.Select(Gen.Int[1, 5].Array[2, 8], Gen.Int[0, 2].Select(i => new[] { 1.0, 1.25, 2.0 }[i]), op.Array[1, 400], Gen.Int[0, 255])
            .Sample((weights, factor, ops, downMask) =>
            {
                var policy = new ConsistentHashPolicy(factor);
                var all = Create(weights);
                var held = new List<BackendEntry>();
                foreach (var (kind, key, which) in ops)
                {
                    if (kind == 0)
                    {
                        if (held.Count == 0) continue;
                        var i = which % held.Count;
                        held[i].InFlight--;
                        held.RemoveAt(i);
                        continue;
                    }
                    // Some backends are down for this pick (never all).
                    var eligible = all.Where((e, i) => (downMask >> ((i + which) % 8) & 1) == 0).ToArray();
                    if (eligible.Length == 0) eligible = all;
                    var chosen = policy.Choose(eligible, new PickContext(key));
                    Assert.Contains(chosen, eligible);
                    chosen.InFlight++;
                    held.Add(chosen);
                    long total = eligible.Sum(e => (long)e.InFlight), sum = eligible.Sum(e => (long)e.Weight);
                    Assert.True(chosen.InFlight <= ConsistentHashPolicy.Capacity(chosen.Weight, total, sum, factor),
                        $"{Name(chosen)} has {chosen.InFlight} in flight; bound {ConsistentHashPolicy.Capacity(chosen.Weight, total, sum, factor)} (total {total}, factor {factor})");
                }
            }, iter: 300);
    }

    // The same through the table: eligibility is the table's (a backend made unhealthy by its
    // probes), the key comes with the pick, and the backend's keys come back when it recovers.
    [Fact]
    public void Table_BackendDownAndUp_MovesOnlyItsKeysAndBringsThemBack()
    {
        var time = new FakeTimeProvider();
        var routes = new RouteFactory();
        var urls = new[] { "http://a:1", "http://b:1", "http://c:1", "http://d:1", "http://e:1" };
        var table = new BackendTable(TestConfigs.Create(urls) with { Balancing = BalancingNames.ConsistentHash }, routes.Create, time, _ => { });
        Dictionary<int, string> Picks() => Enumerable.Range(0, 1000).ToDictionary(i => i, i =>
        {
            var pick = table.Choose(null, new RequestKey(Key(i), null)).Backend!;
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
            return pick.Url;
        });
        void Probe(string url, bool pass) =>
            table.Apply(new ProbeResult(routes[url], time.GetUtcNow(), pass ? 200 : 500, TimeSpan.FromMilliseconds(1), null));

        var before = Picks();
        Probe("http://c:1", false);
        Probe("http://c:1", false); // unhealthy
        var during = Picks();
        var moved = before.Keys.Where(k => before[k] != during[k]).ToList();
        Assert.All(moved, k => Assert.Equal("http://c:1", before[k]));
        Assert.InRange(moved.Count, 1, 220);
        Probe("http://c:1", true);
        Probe("http://c:1", true); // healthy again
        Assert.Equal(before, Picks());
    }

    // A reload that adds a backend: the keys that move all move to it (the ring's other points
    // stay where they were), about its share of them, and they leave it again when it goes.
    [Fact]
    public void Table_BackendAddedAndRemoved_OnlyItsKeysMove()
    {
        var time = new FakeTimeProvider();
        var urls = new[] { "http://a:1", "http://b:1", "http://c:1", "http://d:1" };
        var config = TestConfigs.Create(urls) with { Balancing = BalancingNames.ConsistentHash, HashBalanceFactor = 0 };
        var table = new BackendTable(config, new RouteFactory().Create, time, _ => { });
        var before = Assign(table, 2000);

        table.Reconcile(TestConfigs.Create([.. urls, "http://e:1"]) with { Balancing = BalancingNames.ConsistentHash, HashBalanceFactor = 0 });
        var added = Assign(table, 2000);
        var moved = before.Keys.Where(k => before[k] != added[k]).ToList();
        Assert.All(moved, k => Assert.Equal("http://e:1", added[k]));
        Assert.InRange(moved.Count, 2000 / 5 * 0.8, 2000 / 5 * 1.2);

        table.Reconcile(config);
        Assert.Equal(before, Assign(table, 2000));
    }

    // Slow start: a backend back from being down takes back a share of its keys that grows with
    // its effective weight (10% at once, all of them once the ramp is over), always the same keys
    // growing, so two balancers agree at each moment; the others wait on their next backend.
    [Fact]
    public void Table_BackendWarmingUp_TakesBackAGrowingShareOfItsOwnKeys()
    {
        var time = new FakeTimeProvider();
        var routes = new RouteFactory();
        var urls = new[] { "http://a:1", "http://b:1", "http://c:1", "http://d:1" };
        var config = TestConfigs.Create(urls) with { Balancing = BalancingNames.ConsistentHash, HashBalanceFactor = 0 };
        config = config with { Admission = config.Admission with { SlowStart = TimeSpan.FromSeconds(10) } };
        var table = new BackendTable(config, routes.Create, time, _ => { });
        void Probe(bool pass)
        {
            for (var i = 0; i < 2; i++) table.Apply(new ProbeResult(routes["http://c:1"], time.GetUtcNow(), pass ? 200 : 500, TimeSpan.Zero, null));
        }
        var before = Assign(table, 4000);
        var its = before.Keys.Where(k => before[k] == "http://c:1").ToHashSet();
        Probe(false);
        var down = Assign(table, 4000);
        Probe(true); // back, warming: 10% of its weight

        var previous = new HashSet<int>();
        foreach (var (seconds, share) in new[] { (0, 0.1), (5, 0.55), (10, 1.0) })
        {
            time.Advance(TimeSpan.FromSeconds(seconds) - (time.GetUtcNow() - table.Entries[2].WarmingSince!.Value));
            var now = Assign(table, 4000);
            var back = its.Where(k => now[k] == "http://c:1").ToHashSet();
            Assert.InRange(back.Count, its.Count * share - its.Count * 0.05, its.Count * share + its.Count * 0.05);
            Assert.Superset(previous, back); // the same keys, and more of them
            Assert.All(its.Except(back), k => Assert.Equal(down[k], now[k])); // the rest stay where they went meanwhile
            Assert.All(before.Keys.Except(its), k => Assert.Equal(before[k], now[k])); // nobody else's key moves
            previous = back;
            if (seconds == 10) break;
        }
        Assert.Equal(before, Assign(table, 4000));
    }

    static Dictionary<int, string> Assign(BackendTable table, int keys) => Enumerable.Range(0, keys).ToDictionary(i => i, i =>
    {
        var pick = table.Choose(null, new RequestKey(Key(i), null)).Backend!;
        table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
        return pick.Url;
    });
}
