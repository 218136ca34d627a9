using System.Globalization;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// Weighted random: a backend of weight 2 is chosen twice as often as one of weight 1 (by effective
// weight: a backend in slow start less often).
public sealed class RandomPolicy(Random random) : IBalancingPolicy
{
    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible) => Pick(eligible, random).Chosen;

    // The same draw, over the index's running sums of weights instead of a scan.
    public BackendEntry Choose(BackendIndex candidates, PickContext? context) =>
        candidates.ByWeight(random.NextInt64(candidates.TotalWeight));

    public PolicyChoice Explain(ReadOnlySpan<BackendEntry> eligible, Random draw)
    {
        var (chosen, r, total) = Pick(eligible, draw);
        return new(chosen, string.Create(CultureInfo.InvariantCulture,
            $"weighted random (a dry-run draw, not the live one): drew {Units.Of(r)} of the total weight {Units.Of(total)}; {chosen.Route.Url} (weight {Units.Of(chosen.EffectiveWeight)}) covers it"));
    }

    static (BackendEntry Chosen, long Drawn, long Total) Pick(ReadOnlySpan<BackendEntry> eligible, Random random)
    {
        long total = 0;
        foreach (var e in eligible) total += e.EffectiveWeight; // less while slow start ramps it up
        var drawn = random.NextInt64(total);
        var r = drawn;
        foreach (var e in eligible)
        {
            r -= e.EffectiveWeight;
            if (r < 0) return (e, drawn, total);
        }
        return (eligible[^1], drawn, total);
    }
}
