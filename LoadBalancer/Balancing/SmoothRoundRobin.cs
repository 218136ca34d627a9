using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// nginx's smooth weighted round-robin (RoundRobinPolicy says the rule) without visiting every
// candidate at every pick, and with the same sequence. Between two changes of a candidate, each
// pick adds its weight w to its running weight, so after T picks that is c + T x w: a line.
// Candidates of the same weight have parallel lines, and their order does not change as T grows:
// one max-heap per distinct weight, ordered by intercept c and then by the table's order
// (nginx's tie-break: the first in the list wins), holds them. A pick compares the tops of the
// heaps at T + 1, takes the best (ties again to the table's order), and lowers its intercept by
// the total weight (a sift down). A candidate warming up (slow start) has a weight that moves
// with the clock, so it is no line: it stays on BackendIndex.Warming and its weight is added to
// its running weight at each pick, as before. A backend that stops being a candidate (down, at
// its limit, tried by this retry) leaves its heap with its running weight fixed, and comes back
// with it. Cost of a pick: O(distinct weights + warming candidates + log n); the usual lb.json
// has one to a few distinct weights.
public sealed class SmoothRoundRobin
{
    long _rounds; // T: picks made since the last rebase
    readonly List<WeightClass> _classes = [];
    readonly Stack<WeightClass> _spare = []; // emptied heaps, reused: a backend at its limit leaves its heap and comes back at every request

    /// <summary>When T reaches this, every intercept takes T in and T starts again from 0, so that
    /// c + T x w stays far from overflowing (weights are at most 10^6 in thousandths). Tests lower it.</summary>
    internal long RebaseAt { get; set; } = 1L << 32;

    /// <summary>Puts e where it belongs: in the heap of its weight when inHeap (a full-weight
    /// candidate), else in none, with its running weight as a plain number.</summary>
    internal void Place(BackendEntry e, bool inHeap)
    {
        if (e.Heap is { } heap)
        {
            if (inHeap && heap.Weight == e.EffectiveWeight) return;
            e.RunningWeight = heap.CurrentWeight(e);
            heap.Remove(e);
            if (heap.Count == 0)
            {
                _classes.Remove(heap);
                _spare.Push(heap);
            }
        }
        if (!inHeap) return;
        var to = Class(e.EffectiveWeight);
        e.Intercept = e.RunningWeight - _rounds * to.Weight;
        to.Add(e);
    }

    WeightClass Class(long weight)
    {
        foreach (var c in _classes)
            if (c.Weight == weight) return c;
        var added = _spare.TryPop(out var spare) ? spare : new WeightClass(this);
        added.Weight = weight;
        _classes.Add(added);
        return added;
    }

    /// <summary>One pick among the candidates (the heaps and warming; never none): every one's
    /// running weight grows by its weight, the largest wins (the first in the table's order on a
    /// tie) and drops by the total.</summary>
    public BackendEntry Next(List<BackendEntry> warming)
    {
        var rounds = _rounds + 1;
        BackendEntry? best = null;
        long bestWeight = 0, total = 0;
        foreach (var c in _classes)
        {
            var top = c.Top;
            total += c.Weight * c.Count;
            var w = top.Intercept + rounds * c.Weight;
            if (best is null || w > bestWeight || w == bestWeight && top.Slot < best.Slot) (best, bestWeight) = (top, w);
        }
        foreach (var e in warming)
        {
            var w = e.RunningWeight += e.EffectiveWeight;
            total += e.EffectiveWeight;
            if (best is null || w > bestWeight || w == bestWeight && e.Slot < best.Slot) (best, bestWeight) = (e, w);
        }
        _rounds = rounds;
        if (best!.Heap is { } heap)
        {
            best.Intercept -= total;
            heap.Down(best.HeapPosition);
        }
        else
        {
            best.RunningWeight -= total;
        }
        if (_rounds >= RebaseAt) Rebase();
        return best;
    }

    void Rebase()
    {
        foreach (var c in _classes)
            foreach (var e in c.Items)
                e.Intercept += _rounds * c.Weight; // the same shift for the whole heap: its order stays
        _rounds = 0;
    }

    internal string? Verify()
    {
        foreach (var c in _classes)
        {
            if (c.Count == 0) return $"an empty heap of weight {c.Weight}";
            for (var i = 0; i < c.Count; i++)
            {
                var e = c.Items[i];
                if (e.Heap != c || e.HeapPosition != i) return $"{e} misplaced in the heap of weight {c.Weight}";
                if (i > 0 && WeightClass.Before(e, c.Items[(i - 1) / 2])) return $"{e} above its parent in the heap of weight {c.Weight}";
            }
        }
        return null;
    }

    /// <summary>The candidates of one effective weight: a binary max-heap by (intercept, then the table's order).</summary>
    internal sealed class WeightClass(SmoothRoundRobin owner)
    {
        public readonly List<BackendEntry> Items = [];
        public long Weight { get; set; }
        public int Count => Items.Count;
        public BackendEntry Top => Items[0];

        public long CurrentWeight(BackendEntry e) => e.Intercept + owner._rounds * Weight;

        public void SetCurrentWeight(BackendEntry e, long value)
        {
            e.Intercept = value - owner._rounds * Weight;
            Down(Up(e.HeapPosition));
        }

        public static bool Before(BackendEntry a, BackendEntry b) => a.Intercept > b.Intercept || a.Intercept == b.Intercept && a.Slot < b.Slot;

        public void Add(BackendEntry e)
        {
            e.Heap = this;
            e.HeapPosition = Items.Count;
            Items.Add(e);
            Up(e.HeapPosition);
        }

        public void Remove(BackendEntry e)
        {
            var i = e.HeapPosition;
            var last = Items[^1];
            Items.RemoveAt(Items.Count - 1);
            e.Heap = null;
            e.HeapPosition = -1;
            if (last == e) return;
            Set(i, last);
            Down(Up(i));
        }

        int Up(int i)
        {
            var e = Items[i];
            while (i > 0)
            {
                var parent = (i - 1) / 2;
                if (!Before(e, Items[parent])) break;
                Set(i, Items[parent]);
                i = parent;
            }
            Set(i, e);
            return i;
        }

        public void Down(int i)
        {
            var e = Items[i];
            var n = Items.Count;
            while (true)
            {
                var child = 2 * i + 1;
                if (child >= n) break;
                if (child + 1 < n && Before(Items[child + 1], Items[child])) child++;
                if (!Before(Items[child], e)) break;
                Set(i, Items[child]);
                i = child;
            }
            Set(i, e);
        }

        void Set(int i, BackendEntry e)
        {
            Items[i] = e;
            e.HeapPosition = i;
        }
    }
}
