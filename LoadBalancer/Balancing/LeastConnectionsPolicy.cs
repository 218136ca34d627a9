using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// Fewest in-flight requests per unit of effective weight. Ties rotate (the scan starts one further each
// time), so idle backends share the traffic instead of the first one taking it all.
public sealed class LeastConnectionsPolicy : IBalancingPolicy
{
    uint _start;

    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
    {
        var n = eligible.Length;
        var first = (int)(_start++ % (uint)n);
        var best = eligible[first];
        for (var k = 1; k < n; k++)
        {
            var e = eligible[(first + k) % n];
            if (Load.Less(e, best)) best = e;
        }
        return best;
    }
}

static class Load
{
    /// <summary>a.InFlight / a.EffectiveWeight &lt; b.InFlight / b.EffectiveWeight, without division
    /// (the effective weight: a backend in slow start counts as more loaded).</summary>
    public static bool Less(BackendEntry a, BackendEntry b) => a.InFlight * b.EffectiveWeight < b.InFlight * a.EffectiveWeight;
}
