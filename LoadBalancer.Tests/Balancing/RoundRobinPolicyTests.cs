using LoadBalancer.Balancing;
using LoadBalancer.Pipeline;
using static LoadBalancer.Tests.Balancing.PolicyTestEntries;

namespace LoadBalancer.Tests.Balancing;

public sealed class RoundRobinPolicyTests
{
    readonly RoundRobinPolicy _policy = new();

    [Fact]
    public void Choose_Weights511_NginxSmoothOrder()
    {
        var entries = Create(5, 1, 1);

        Assert.Equal("a a b a c a a", Picks(_policy, entries, 7));
        Assert.Equal("a a b a c a a", Picks(_policy, entries, 7)); // and again, period 7
    }

    // What a pick calls: the same sequence from the index's per-weight heaps, with no scan.
    [Fact]
    public void Choose_Weights511ThroughTheIndex_NginxSmoothOrder()
    {
        var index = new BackendIndex();
        index.Rebuild(Create(5, 1, 1));

        Assert.Equal("a a b a c a a a a b a c a a", string.Join(" ", Enumerable.Range(0, 14).Select(_ => Name(_policy.Choose(index, null)))));
    }

    [Fact]
    public void Choose_EqualWeights_Rotates()
    {
        Assert.Equal("a b c a b c", Picks(_policy, Create(1, 1, 1), 6));
    }

    [Fact]
    public void Choose_OneOfThreeEqualIneligible_OtherTwoAlternate()
    {
        var all = Create(1, 1, 1);

        Assert.Equal("a c a c a c a c", Picks(_policy, [all[0], all[2]], 8)); // b is down
    }

    [Fact]
    public void Choose_OneOfThreeGoesDownMidway_OtherTwoShareEvenlyNeverAllToOne()
    {
        var all = Create(1, 1, 1);
        Assert.Equal("a", Picks(_policy, all, 1));
        var eligible = new[] { all[0], all[2] }; // b goes down after a pick: its credit is frozen

        var picks = Picks(_policy, eligible, 100).Split(' ');

        // nginx's algorithm: c carries one pick of credit from before, then they alternate.
        Assert.InRange(picks.Count(p => p == "a"), 49, 51);
        Assert.All(picks.Zip(picks.Skip(1), picks.Skip(2)), t => Assert.False(t.First == t.Second && t.Second == t.Third));
        Assert.All(picks.Skip(2).Zip(picks.Skip(3)), pair => Assert.NotEqual(pair.First, pair.Second));
    }

    [Fact]
    public void Choose_BackendReturns_SharesAgainAtOnce()
    {
        var all = Create(1, 1, 1);
        Picks(_policy, [all[0], all[2]], 5); // b was down for a while

        var counts = Count(_policy, all, 30);

        Assert.Equal(10, counts["a"]);
        Assert.Equal(10, counts["b"]);
        Assert.Equal(10, counts["c"]);
    }

    [Fact]
    public void Choose_Weights_ProportionalOverAPeriod()
    {
        var counts = Count(_policy, Create(3, 2, 1), 600);

        Assert.Equal(300, counts["a"]);
        Assert.Equal(200, counts["b"]);
        Assert.Equal(100, counts["c"]);
    }
}
