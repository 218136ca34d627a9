using System.Runtime.InteropServices;
using LoadBalancer.Balancing;

namespace LoadBalancer.Pipeline;

// BackendTable's running index of its backends (issue 16): what a pick and an outcome need, kept
// up to date as backends move, so that neither has to look at the backends that did not.
//   - The candidates of a pick: eligible, under their in-flight limit, not tried by the pick
//     being made (BackendEntry.Excluded), in the table's order. They are the leaves of a segment
//     tree (a complete binary tree over the slots; each node holds its range's count of
//     candidates, sum of effective weights, and leftmost least-loaded candidate), so the k-th
//     candidate, the one a weighted draw lands on, and the least loaded from a given position on
//     are found in O(log n), exactly as a scan of the table's list would find them.
//   - The counts the rules ask for: eligible backends, ejected ones, ones not draining.
//   - The candidates warming up (slow start): their weight moves with the clock, so the table
//     warms them at each pick (BackendTable.Candidates) as it warmed every candidate before.
//   - Round-robin's running weights (SmoothRoundRobin).
//   - The entries whose gauges may have moved since the last publish (BackendTable.Gauges.cs).
// Each entry tells the index when it moves (BackendEntry's setters call Moved): O(log n) a move.
// The table rebuilds it whole when its list of backends changes (a reload, discovery): O(n log n).
// Plain state of the state task, like the table.
public sealed class BackendIndex
{
    BackendEntry?[] _slots = [];
    int _leaves = 1;                // a power of two >= the slots; node 1 is the root, leaf i is node _leaves + i
    int[] _count = new int[2];      // candidates in the node's range
    long[] _weight = new long[2];   // their effective weights, summed
    int[] _least = [-1, -1];        // the slot of the leftmost least-loaded candidate in the range (-1: none)
    readonly List<BackendEntry> _warming = [];
    readonly List<BackendEntry> _dirty = [];
    readonly List<BackendEntry> _scratch = [];

    /// <summary>Round-robin's running weights, for RoundRobinPolicy (and consistent-hash's requests without a key).</summary>
    public SmoothRoundRobin RoundRobin { get; } = new();

    /// <summary>The candidates of the pick being made (no pick: of a first attempt).</summary>
    public int Count => _count[1];

    /// <summary>The candidates' effective weights, summed.</summary>
    public long TotalWeight => _weight[1];

    /// <summary>The candidates' in-flight requests, summed.</summary>
    public long InFlight { get; private set; }

    /// <summary>+1 at each Rebuild: what was built from the slots (consistent-hash's ring) is stale.</summary>
    public int Generation { get; private set; }

    /// <summary>Every backend by slot (null: removed since the last Rebuild).</summary>
    public ReadOnlySpan<BackendEntry?> Slots => _slots;

    /// <summary>Backends eligible for traffic, whatever their limit.</summary>
    public int Eligible { get; private set; }

    /// <summary>Backends in the configuration (not draining away after a reload), and how many of those are ejected.</summary>
    public int Configured { get; private set; }
    public int Ejected { get; private set; }

    /// <summary>The candidates warming up (slow start), in no particular order.</summary>
    public List<BackendEntry> Warming => _warming;

    /// <summary>Keep the list of entries whose gauges may have moved (the table publishes gauges).</summary>
    public bool TrackGauges { get; set; }

    /// <summary>Makes the index that of these entries, in this order (the table's): O(n log n).</summary>
    public void Rebuild(IReadOnlyList<BackendEntry> entries)
    {
        foreach (var e in _slots)
            if (e is not null) Forget(e);
        _warming.Clear();
        _dirty.Clear();
        Eligible = Configured = Ejected = 0;
        InFlight = 0;
        Generation++;
        _slots = [.. entries];
        _leaves = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, _slots.Length));
        _count = new int[2 * _leaves];
        _weight = new long[2 * _leaves];
        _least = new int[2 * _leaves];
        Array.Fill(_least, -1);
        for (var i = 0; i < _slots.Length; i++)
        {
            var e = _slots[i]!;
            e.Index = this;
            e.Slot = i;
            Recount(e);
            Place(e);
            if (!e.IndexedCandidate) continue;
            var leaf = _leaves + i;
            _count[leaf] = 1;
            _weight[leaf] = e.IndexedWeight;
            _least[leaf] = i;
        }
        for (var node = _leaves - 1; node >= 1; node--) Pull(node);
    }

    /// <summary>e has left the table (drained away): its slot stays empty until the next Rebuild.</summary>
    public void Remove(BackendEntry e)
    {
        if (e.Index != this) return;
        e.Excluded = false;
        Forget(e);
        _slots[e.Slot] = null;
        Leaf(e.Slot, null);
        e.Slot = -1;
    }

    // e leaves the index: uncounted, out of every list, its running weight a plain number again.
    void Forget(BackendEntry e)
    {
        RoundRobin.Place(e, false);
        if (e.IndexedEligible) Eligible--;
        if (e.IndexedConfigured) Configured--;
        if (e.IndexedEjected) Ejected--;
        InFlight -= e.IndexedInFlight;
        if (e.WarmingPosition >= 0) RemoveWarming(e);
        e.IndexedEligible = e.IndexedConfigured = e.IndexedEjected = e.IndexedCandidate = false;
        e.IndexedWeight = e.IndexedInFlight = 0;
        e.GaugesDirty = false;
        e.Index = null;
    }

    /// <summary>Called by e's setters: something a pick depends on may have changed. O(log n).</summary>
    internal void Moved(BackendEntry e)
    {
        var weight = e.IndexedWeight;
        var wasCandidate = e.IndexedCandidate;
        Recount(e);
        if (e.IndexedCandidate != wasCandidate || e.IndexedWeight != weight) Leaf(e.Slot, e);
        else if (wasCandidate) Reload(e.Slot); // its in-flight count may have moved: only the least-loaded path
        Place(e);
    }

    /// <summary>Called by e's setters for a gauge that no pick depends on (open connections).</summary>
    internal void Touched(BackendEntry e)
    {
        if (!TrackGauges || e.GaugesDirty) return;
        e.GaugesDirty = true;
        _dirty.Add(e);
    }

    /// <summary>The entries whose gauges may have moved since the last call (each once), then forgets them.</summary>
    public void TakeDirty(List<BackendEntry> into)
    {
        foreach (var e in _dirty)
        {
            e.GaugesDirty = false;
            if (e.Index == this) into.Add(e);
        }
        _dirty.Clear();
    }

    // Counts e as it is now: eligible, configured, ejected, candidate and its weight as one.
    void Recount(BackendEntry e)
    {
        Touched(e);
        var eligible = e.Eligible;
        if (eligible != e.IndexedEligible)
        {
            e.IndexedEligible = eligible;
            Eligible += eligible ? 1 : -1;
        }
        var configured = !e.Draining;
        if (configured != e.IndexedConfigured)
        {
            e.IndexedConfigured = configured;
            Configured += configured ? 1 : -1;
        }
        var ejected = configured && e.EjectedUntil is not null;
        if (ejected != e.IndexedEjected)
        {
            e.IndexedEjected = ejected;
            Ejected += ejected ? 1 : -1;
        }
        e.IndexedCandidate = eligible && !e.Excluded && e.HasSlot;
        e.IndexedWeight = e.IndexedCandidate ? e.EffectiveWeight : 0;
        var inFlight = e.IndexedCandidate ? e.InFlight : 0;
        InFlight += inFlight - e.IndexedInFlight;
        e.IndexedInFlight = inFlight;
    }

    // The lists a candidate may be on: warming up, or in round-robin's heap of its weight.
    void Place(BackendEntry e)
    {
        var warming = e.IndexedCandidate && e.WarmingSince is not null;
        if (warming && e.WarmingPosition < 0)
        {
            e.WarmingPosition = _warming.Count;
            _warming.Add(e);
        }
        else if (!warming && e.WarmingPosition >= 0)
        {
            RemoveWarming(e);
        }
        RoundRobin.Place(e, e.IndexedCandidate && !warming);
    }

    void RemoveWarming(BackendEntry e)
    {
        var last = _warming[^1];
        _warming[e.WarmingPosition] = last;
        last.WarmingPosition = e.WarmingPosition;
        _warming.RemoveAt(_warming.Count - 1);
        e.WarmingPosition = -1;
    }

    // ---- the segment tree -------------------------------------------------------------------

    void Leaf(int slot, BackendEntry? e)
    {
        var node = _leaves + slot;
        var candidate = e is { IndexedCandidate: true };
        _count[node] = candidate ? 1 : 0;
        _weight[node] = candidate ? e!.IndexedWeight : 0;
        _least[node] = candidate ? slot : -1;
        for (node >>= 1; node >= 1; node >>= 1) Pull(node);
    }

    // The slot's load moved, nothing else: only the least-loaded entries on its path can change,
    // and only while the path still leads to it or away from where it led.
    void Reload(int slot)
    {
        for (var node = (_leaves + slot) >> 1; node >= 1; node >>= 1)
        {
            var least = Lesser(_least[2 * node], _least[2 * node + 1]);
            if (least == _least[node] && least != slot) return;
            _least[node] = least;
        }
    }

    void Pull(int node)
    {
        int left = 2 * node, right = left + 1;
        _count[node] = _count[left] + _count[right];
        _weight[node] = _weight[left] + _weight[right];
        _least[node] = Lesser(_least[left], _least[right]);
    }

    // Of two slots (-1: none), the less loaded; a tie goes to the first (the left one).
    int Lesser(int left, int right) =>
        left < 0 ? right : right < 0 ? left : Load.Less(_slots[right]!, _slots[left]!) ? right : left;

    /// <summary>The k-th candidate (from 0) in the table's order.</summary>
    public BackendEntry Nth(int k)
    {
        var node = 1;
        while (node < _leaves)
        {
            node *= 2;
            if (_count[node] <= k)
            {
                k -= _count[node];
                node++;
            }
        }
        return _slots[node - _leaves]!;
    }

    /// <summary>The candidate a draw in [0, TotalWeight) lands on when the candidates' weights are
    /// laid end to end in the table's order: the first whose running sum exceeds it.</summary>
    public BackendEntry ByWeight(long drawn)
    {
        var node = 1;
        while (node < _leaves)
        {
            node *= 2;
            if (_weight[node] <= drawn)
            {
                drawn -= _weight[node];
                node++;
            }
        }
        return _slots[node - _leaves]!;
    }

    /// <summary>The least-loaded candidate (in flight per effective weight), a tie going to the
    /// first from the first-th candidate on, wrapping around: what a scan starting there finds.</summary>
    public BackendEntry LeastLoaded(int first)
    {
        var least = _slots[_least[1]]!;
        var from = FirstAsLoaded(1, 0, _leaves, Nth(first).Slot, least);
        return from >= 0 ? _slots[from]! : least; // none at or after first: the leftmost of all
    }

    // The leftmost slot >= from in node's range [lo, hi) holding a candidate as little loaded as least.
    int FirstAsLoaded(int node, int lo, int hi, int from, BackendEntry least)
    {
        var candidate = _least[node];
        if (hi <= from || candidate < 0 || Load.Less(least, _slots[candidate]!)) return -1;
        if (node >= _leaves) return lo;
        var mid = (lo + hi) / 2;
        var left = FirstAsLoaded(2 * node, lo, mid, from, least);
        return left >= 0 ? left : FirstAsLoaded(2 * node + 1, mid, hi, from, least);
    }

    /// <summary>The candidates in the table's order, by a scan of every slot: O(n), for a policy
    /// that has no faster way (consistent-hash with a key, a test's policy). Valid until the next call.</summary>
    public ReadOnlySpan<BackendEntry> Candidates()
    {
        _scratch.Clear();
        foreach (var e in _slots)
            if (e is { IndexedCandidate: true }) _scratch.Add(e);
        return CollectionsMarshal.AsSpan(_scratch);
    }

    /// <summary>For tests: what a scan of every slot says the index should hold, compared with what it
    /// holds. Null when they agree, else the first difference in words.</summary>
    internal string? Verify()
    {
        int eligible = 0, configured = 0, ejected = 0;
        var candidates = new List<BackendEntry>();
        foreach (var e in _slots)
        {
            if (e is null) continue;
            if (e.Index != this) return $"{e} is in a slot but not indexed";
            if (e.Eligible) eligible++;
            if (!e.Draining) configured++;
            if (!e.Draining && e.EjectedUntil is not null) ejected++;
            var candidate = e.Eligible && !e.Excluded && e.HasSlot;
            if (candidate != e.IndexedCandidate) return $"{e}: candidate {candidate}, indexed {e.IndexedCandidate}";
            if (candidate) candidates.Add(e);
            if (candidate && e.IndexedWeight != e.EffectiveWeight) return $"{e}: weight {e.EffectiveWeight}, indexed {e.IndexedWeight}";
            var warming = candidate && e.WarmingSince is not null;
            if (warming != (e.WarmingPosition >= 0)) return $"{e}: warming {warming}, listed {e.WarmingPosition >= 0}";
            if ((candidate && !warming) != e.Heap is not null) return $"{e}: round-robin heap {e.Heap is not null}";
            if (e.Heap is { } heap && heap.Weight != e.EffectiveWeight) return $"{e}: in the heap of weight {heap.Weight}, weight {e.EffectiveWeight}";
        }
        if ((eligible, configured, ejected) != (Eligible, Configured, Ejected))
            return $"counts eligible/configured/ejected {eligible}/{configured}/{ejected}, indexed {Eligible}/{Configured}/{Ejected}";
        if (candidates.Count != Count) return $"{candidates.Count} candidates, indexed {Count}";
        if (candidates.Sum(e => e.EffectiveWeight) != TotalWeight) return $"weights {candidates.Sum(e => e.EffectiveWeight)}, indexed {TotalWeight}";
        if (candidates.Sum(e => (long)e.InFlight) != InFlight) return $"in flight {candidates.Sum(e => (long)e.InFlight)}, indexed {InFlight}";
        for (var node = _leaves - 1; node >= 1; node--)
        {
            var least = Lesser(_least[2 * node], _least[2 * node + 1]);
            if (least != _least[node]) return $"least-loaded of node {node}: {least}, indexed {_least[node]}";
        }
        return RoundRobin.Verify();
    }
}
