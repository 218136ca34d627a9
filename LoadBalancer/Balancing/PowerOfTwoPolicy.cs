using System.Globalization;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// "The power of two random choices": pick two different backends at random, send to the one
// with fewer in-flight requests per unit of weight. Nearly as good as least-connections,
// without its herding when many balancers share backends.
public sealed class PowerOfTwoPolicy(Random random) : IBalancingPolicy
{
    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible) => Pick(eligible, random).Chosen;

    // The same draws, the two sampled found by rank in the index.
    public BackendEntry Choose(BackendIndex candidates, PickContext? context)
    {
        var n = candidates.Count;
        if (n == 1) return candidates.Nth(0);
        var i = random.Next(n);
        var j = random.Next(n - 1);
        if (j >= i) j++;
        BackendEntry a = candidates.Nth(i), b = candidates.Nth(j);
        return Load.Less(b, a) ? b : a;
    }

    // The same rule on the dry run's own draw: the live source is not touched.
    public PolicyChoice Explain(ReadOnlySpan<BackendEntry> eligible, Random draw)
    {
        var (chosen, a, b) = Pick(eligible, draw);
        if (b is null) return new(chosen, $"power-of-two: {chosen.Route.Url} is the only eligible backend");
        var why = Load.Less(a, b) || Load.Less(b, a) ? "fewer in flight per weight" : "a tie goes to the first sampled";
        return new(chosen, string.Create(CultureInfo.InvariantCulture,
            $"power-of-two (a dry-run draw, not the live one): sampled {a.Route.Url} ({a.InFlight}/{Units.Of(a.EffectiveWeight)}) and {b.Route.Url} ({b.InFlight}/{Units.Of(b.EffectiveWeight)}); {chosen.Route.Url} wins: {why}"));
    }

    static (BackendEntry Chosen, BackendEntry A, BackendEntry? B) Pick(ReadOnlySpan<BackendEntry> eligible, Random random)
    {
        if (eligible.Length == 1) return (eligible[0], eligible[0], null);
        var i = random.Next(eligible.Length);
        var j = random.Next(eligible.Length - 1);
        if (j >= i) j++;
        var chosen = Load.Less(eligible[j], eligible[i]) ? eligible[j] : eligible[i];
        return (chosen, eligible[i], eligible[j]);
    }
}
