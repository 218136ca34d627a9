using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// "The power of two random choices": pick two different backends at random, send to the one
// with fewer in-flight requests per unit of weight. Nearly as good as least-connections,
// without its herding when many balancers share backends.
public sealed class PowerOfTwoPolicy(Random random) : IBalancingPolicy
{
    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
    {
        if (eligible.Length == 1) return eligible[0];
        var i = random.Next(eligible.Length);
        var j = random.Next(eligible.Length - 1);
        if (j >= i) j++;
        return Load.Less(eligible[j], eligible[i]) ? eligible[j] : eligible[i];
    }
}
