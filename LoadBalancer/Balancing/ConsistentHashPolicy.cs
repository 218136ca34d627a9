using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// Consistent hashing by rendezvous (highest random weight, Thaler and Ravishankar 1998): each
// key ranks every backend by a score hash(key, backend) that depends on nothing else, and goes
// to the best-ranked eligible one. So eligibility is applied at lookup: ranking only the eligible
// span gives the same answer as ranking all configured backends and skipping the ineligible ones.
// A backend that goes down moves only the keys it held (to their second choice) and they come
// back when it returns; no ring, no table to rebuild (envoy#22558's ketama moves keys of hosts
// that did not change). Weighted: score = weight / -ln(u), u uniform in (0,1) from the hash, so
// a backend of weight 2 wins twice as many keys. The weight is the effective one: a backend
// warming up under slow start wins its keys back as its weight ramps up.
//
// Bounded load (Mirrokni, Thorup, Zadimoghaddam 2018): with factor c > 0 a backend takes a new
// request only while its in-flight count, with that request, stays within ceil(c x its
// weight's share of all in-flight + 1); otherwise the key spills to the next backend in its own
// ranking. With c >= 1 some backend always fits (one is at or below its share). The counts are
// the state task's exact in-flight counts.
//
// Requests without a key go round-robin.
public sealed class ConsistentHashPolicy(double balanceFactor) : IBalancingPolicy
{
    readonly RoundRobinPolicy _noKey = new();

    public double BalanceFactor => balanceFactor;

    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible) => _noKey.Choose(eligible);

    // Without a key: round-robin through the index. With one: rendezvous ranks every candidate, O(n).
    public BackendEntry Choose(BackendIndex candidates, PickContext? context) =>
        context is { } c ? Choose(candidates.Candidates(), c) : _noKey.Choose(candidates, null);

    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible, PickContext context)
    {
        if (eligible.Length == 1) return eligible[0];
        long inFlight = 1, weights = 0; // 1: the request being placed
        foreach (var e in eligible)
        {
            inFlight += e.InFlight;
            weights += e.EffectiveWeight; // less while slow start ramps it up
        }
        BackendEntry? best = null;
        var bestScore = double.NegativeInfinity;
        foreach (var e in eligible)
        {
            if (balanceFactor > 0 && e.InFlight + 1 > Capacity(e.EffectiveWeight, inFlight, weights, balanceFactor)) continue;
            var score = Score(context.Key, e);
            if (score > bestScore)
            {
                best = e;
                bestScore = score;
            }
        }
        return best ?? eligible[0]; // unreachable with factor >= 1 (the loader refuses 0 < c < 1)
    }

    /// <summary>The most requests a backend may have in flight, the new one included:
    /// ceil(c x total x weight / all weights).</summary>
    public static long Capacity(long weight, long totalInFlight, long weights, double factor) =>
        (long)Math.Ceiling(factor * totalInFlight * weight / weights);

    /// <summary>The key's score for this backend (higher wins): w / -ln(u) with u from
    /// hash(key, backend) in (0, 1). Depends on the key and the backend only.</summary>
    public static double Score(ulong key, BackendEntry e)
    {
        var h = KeyHash.Mix(key ^ e.HashSeed);
        var u = ((h >> 11) + 0.5) * (1.0 / (1UL << 53)); // 53 bits, never 0 or 1
        return e.EffectiveWeight / -Math.Log(u);
    }
}
