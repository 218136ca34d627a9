using LoadBalancer.Balancing;
using static LoadBalancer.Tests.Balancing.PolicyTestEntries;

namespace LoadBalancer.Tests.Balancing;

public sealed class PowerOfTwoPolicyTests
{
    readonly PowerOfTwoPolicy _policy = new(new Random(42));

    [Fact]
    public void Choose_TwoBackends_AlwaysTheLessLoaded()
    {
        var entries = Create(1, 1);
        entries[0].InFlight = 5;

        // Two distinct choices out of two: always both, so the loaded one never wins.
        Assert.Equal(0, Count(_policy, entries, 200)["a"]);
    }

    [Fact]
    public void Choose_ThreeBackends_MostLoadedNeverAndLeastLoadedWhenDrawn()
    {
        var entries = Create(1, 1, 1);
        entries[0].InFlight = 0;
        entries[1].InFlight = 5;
        entries[2].InFlight = 10;

        var counts = Count(_policy, entries, 3000);

        Assert.Equal(0, counts["c"]); // it would win only against itself: the two are distinct
        // a is in 2 of the 3 possible pairs, and wins each; b wins only the pair {b, c}.
        Assert.InRange(counts["a"], 1850, 2150);
        Assert.InRange(counts["b"], 850, 1150);
    }

    [Fact]
    public void Choose_Weights_LoadIsPerWeight()
    {
        var entries = Create(1, 10);
        entries[0].InFlight = 1;  // 1 per weight
        entries[1].InFlight = 5;  // 0.5 per weight

        Assert.Equal(0, Count(_policy, entries, 100)["a"]);
    }

    [Fact]
    public void Choose_OneEligible_ReturnsIt()
    {
        var entries = Create(1);
        entries[0].InFlight = 100;

        Assert.Same(entries[0], _policy.Choose(entries));
    }

    [Fact]
    public void Choose_EqualLoad_SpreadsOverAll()
    {
        var counts = Count(_policy, Create(1, 1, 1, 1), 4000);

        Assert.All(counts.Values, c => Assert.InRange(c, 850, 1150));
    }
}
