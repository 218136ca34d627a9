using LoadBalancer.Balancing;
using static LoadBalancer.Tests.Balancing.PolicyTestEntries;

namespace LoadBalancer.Tests.Balancing;

public sealed class RandomPolicyTests
{
    [Fact]
    public void Choose_Weights_RoughlyProportional()
    {
        var policy = new RandomPolicy(new Random(7));

        var counts = Count(policy, Create(1, 2, 7), 10_000);

        Assert.InRange(counts["a"], 800, 1200);
        Assert.InRange(counts["b"], 1750, 2250);
        Assert.InRange(counts["c"], 6600, 7400);
    }

    [Fact]
    public void Choose_EqualWeights_EveryBackendChosen()
    {
        var counts = Count(new RandomPolicy(new Random(1)), Create(1, 1, 1), 3000);

        Assert.All(counts.Values, c => Assert.InRange(c, 850, 1150));
    }

    [Fact]
    public void Choose_SameSeed_SameSequence()
    {
        var entries = Create(1, 1, 1, 1);

        Assert.Equal(Picks(new RandomPolicy(new Random(3)), entries, 20), Picks(new RandomPolicy(new Random(3)), entries, 20));
    }
}
