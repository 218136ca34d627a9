using LoadBalancer.Balancing;
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
