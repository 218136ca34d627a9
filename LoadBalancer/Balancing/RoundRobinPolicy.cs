using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// nginx's smooth weighted round-robin (ngx_http_upstream_get_peer): every pick adds each
// candidate's weight to its running weight, takes the largest, and subtracts the total from it.
// Weights 5,1,1 give a a b a c a a. Only eligible backends take part, so with one of three
// equal backends down the other two alternate: the tutorial's "all to the first healthy one"
// cannot happen.
public sealed class RoundRobinPolicy : IBalancingPolicy
{
    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
    {
        BackendEntry? best = null;
        long total = 0;
        foreach (var e in eligible)
        {
            e.CurrentWeight += e.EffectiveWeight; // Weight, scaled; less while slow start ramps it up
            total += e.EffectiveWeight;
            if (best is null || e.CurrentWeight > best.CurrentWeight) best = e;
        }
        best!.CurrentWeight -= total;
        return best;
    }
}
