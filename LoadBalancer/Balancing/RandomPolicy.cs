using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// Weighted random: a backend of weight 2 is chosen twice as often as one of weight 1 (by effective
// weight: a backend in slow start less often).
public sealed class RandomPolicy(Random random) : IBalancingPolicy
{
    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
    {
        long total = 0;
        foreach (var e in eligible) total += e.EffectiveWeight; // less while slow start ramps it up
        var r = random.NextInt64(total);
        foreach (var e in eligible)
        {
            r -= e.EffectiveWeight;
            if (r < 0) return e;
        }
        return eligible[^1];
    }
}
