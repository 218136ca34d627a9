using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// Consistent hashing on a ring (HashRing: 160 points per unit of weight for each backend, placed
// by its identity alone). A key goes to the backend of the first point at or after its position,
// walking clockwise past the backends that may not take it now: not eligible (down, draining, at
// their in-flight limit, tried by this retry), over the load bound, or past slow start's share.
// So eligibility is applied at lookup, and the ring is rebuilt only when the set of backends or
// their weights change: a backend that goes down moves only the keys it held (each to the next
// backend on its own walk), and they come back when it returns. Weighted: a backend of weight 2
// has twice the points, so twice the keys. A backend warming up under slow start takes a key
// only when the key's own draw for it, u in [0, 1) from hash(key, backend), is under its
// effective share (effective weight / weight): it wins its keys back, the same ones on every
// balancer, as its weight ramps up; the others walk on.
//
// Bounded load (Mirrokni, Thorup, Zadimoghaddam 2018): with factor c > 0 a backend takes a new
// request only while its in-flight count, with that request, stays within ceil(c x its
// weight's share of all in-flight + 1); otherwise the key walks on to the next backend on the
// ring. With c >= 1 some backend always fits (one is at or below its share). The counts are
// the state task's exact in-flight counts.
//
// Cost: a binary search and a walk of a few points while most backends may take the key; the
// walk grows when most of them may not (most down: it crosses their points). Before issue 16
// this was rendezvous hashing, a score for every backend at every pick: O(n).
//
// Requests without a key go round-robin.
public sealed class ConsistentHashPolicy(double balanceFactor) : IBalancingPolicy
{
    readonly RoundRobinPolicy _noKey = new();
    HashRing? _ring;            // the index's slots', as of its generation _ringGeneration
    int _ringGeneration = -1;
    HashRing? _spanRing;        // the last span's (the span Choose: tests, ReferencePicks)

    public double BalanceFactor => balanceFactor;

    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible) => _noKey.Choose(eligible);

    public BackendEntry Choose(BackendIndex candidates, PickContext? context)
    {
        if (context is not { } c) return _noKey.Choose(candidates, null);
        if (candidates.Count == 1) return candidates.Nth(0);
        if (_ringGeneration != candidates.Generation) // a reload or discovery: the same backends and weights keep the ring
        {
            if (_ring is null || !_ring.Of(candidates.Slots)) _ring = new HashRing(candidates.Slots);
            _ringGeneration = candidates.Generation;
        }
        return Walk(_ring!, c.Key, all: false, candidates.InFlight + 1, candidates.TotalWeight); // 1: the request being placed
    }

    // The rule as written: a ring of exactly these candidates (kept while they stay the same).
    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible, PickContext context)
    {
        if (eligible.Length == 1) return eligible[0];
        long inFlight = 1, weights = 0; // 1: the request being placed
        foreach (var e in eligible)
        {
            inFlight += e.InFlight;
            weights += e.EffectiveWeight; // less while slow start ramps it up
        }
        if (_spanRing is null || !_spanRing.Of(eligible)) _spanRing = new HashRing(eligible);
        return Walk(_spanRing, context.Key, all: true, inFlight, weights);
    }

    // From the key's point clockwise, the first backend that may take it. all: every backend on
    // the ring is a candidate; else the index says which are. After a whole turn without one (every
    // candidate over the bound or warming past this key), the first under the bound, else the first.
    BackendEntry Walk(HashRing ring, ulong key, bool all, long inFlight, long weights)
    {
        BackendEntry? fits = null, first = null;
        for (int k = 0, i = ring.Start(key); k < ring.Length; k++, i = i + 1 == ring.Length ? 0 : i + 1)
        {
            var e = ring.Owner(i);
            if (!all && !e.IndexedCandidate) continue;
            first ??= e;
            if (balanceFactor > 0 && e.InFlight + 1 > Capacity(e.EffectiveWeight, inFlight, weights, balanceFactor)) continue;
            fits ??= e;
            if (Warm(key, e)) return e;
        }
        return fits ?? first!;
    }

    /// <summary>Slow start's share for this key: true when e is at full weight, or when the key's
    /// draw for e, u in [0, 1) from hash(key, backend), is under effective weight / weight.</summary>
    public static bool Warm(ulong key, BackendEntry e)
    {
        var full = e.Weight * SlowStart.Scale;
        if (e.EffectiveWeight >= full) return true;
        var u = KeyHash.Mix(key ^ e.HashSeed) >> 32; // 32 bits
        return (long)(u * (ulong)full >> 32) < e.EffectiveWeight;
    }

    /// <summary>The most requests a backend may have in flight, the new one included:
    /// ceil(c x total x weight / all weights).</summary>
    public static long Capacity(long weight, long totalInFlight, long weights, double factor) =>
        (long)Math.Ceiling(factor * totalInFlight * weight / weights);
}
