using LoadBalancer.Balancing;
using LoadBalancer.Pipeline;
using static LoadBalancer.Tests.Balancing.PolicyTestEntries;

namespace LoadBalancer.Tests.Balancing;

public sealed class LeastConnectionsPolicyTests
{
    readonly LeastConnectionsPolicy _policy = new();

    [Fact]
    public void Choose_DifferentInFlight_FewestWins()
    {
        var entries = Create(1, 1, 1);
        entries[0].InFlight = 3;
        entries[1].InFlight = 1;
        entries[2].InFlight = 2;

        Assert.Equal("b b b b", Picks(_policy, entries, 4)); // whatever the scan's start
    }

    [Fact]
    public void Choose_Weights_FewestPerWeightWins()
    {
        var entries = Create(1, 4, 2);
        entries[0].InFlight = 2; // 2 per weight
        entries[1].InFlight = 6; // 1.5
        entries[2].InFlight = 4; // 2

        Assert.Equal("b b b", Picks(_policy, entries, 3));
    }

    [Fact]
    public void Choose_Ties_Rotate()
    {
        var entries = Create(1, 1, 1);

        Assert.Equal("a b c a b c", Picks(_policy, entries, 6));
    }

    // What a pick calls: the index's least-loaded search from the rotating start, with no scan.
    [Fact]
    public void Choose_ThroughTheIndex_FewestPerWeightAndTiesRotate()
    {
        var entries = Create(1, 1, 1, 2);
        var index = new BackendIndex();
        index.Rebuild(entries);
        entries[1].InFlight = 1; // b: 1 per weight, the others 0

        // The start moves one on at each pick; the first of the least loaded from there wins.
        Assert.Equal("a c c d", string.Join(" ", Enumerable.Range(0, 4).Select(_ => Name(_policy.Choose(index, null)))));
        entries[3].InFlight = 1; // d: 0.5 per weight
        Assert.Equal("a c c a", string.Join(" ", Enumerable.Range(0, 4).Select(_ => Name(_policy.Choose(index, null)))));
        entries[0].InFlight = entries[2].InFlight = 1;
        Assert.Equal("d d", string.Join(" ", Enumerable.Range(0, 2).Select(_ => Name(_policy.Choose(index, null)))));
    }

    [Fact]
    public void Choose_TieBetweenTwo_RotatesBetweenThoseTwo()
    {
        var entries = Create(1, 1, 1);
        entries[1].InFlight = 5;

        var counts = Count(_policy, entries, 10);

        Assert.Equal(0, counts["b"]);
        Assert.InRange(counts["a"], 4, 6);
        Assert.InRange(counts["c"], 4, 6);
    }

    [Fact]
    public void Choose_InFlightCountedAsTheTableWould_StaysBalanced()
    {
        var entries = Create(1, 1);
        for (var i = 0; i < 9; i++) _policy.Choose(entries).InFlight++; // nine slow requests

        Assert.InRange(entries[0].InFlight, 4, 5);
        Assert.Equal(9, entries[0].InFlight + entries[1].InFlight);
    }
}
