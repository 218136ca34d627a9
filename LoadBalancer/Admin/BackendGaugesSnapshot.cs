using System.Collections;

namespace LoadBalancer.Admin;

// Every backend's gauges at one moment, as the state task published them: immutable once
// published, read at scrape time. Made as a base (every backend's gauges when the set of backends
// last changed, or at the last compaction) plus the changes published since, newest first, so
// that a loop turn in which a few backends moved publishes those few (With: O(changes)), not a
// new array of every backend (3,000 backends: 96 KB, on the large object heap, every turn). When
// the changes outnumber the backends, With folds them into a new base: O(n) once every n
// changes, so O(1) a change, and a snapshot never holds more than about twice the backends.
// A reader (the exporter, at scrape time) folds the changes into an array once per snapshot.
public sealed class BackendGaugesSnapshot : IReadOnlyList<BackendGauges>
{
    readonly BackendGauges[] _base;
    readonly Change? _changes; // newest first
    readonly int _changeCount;
    BackendGauges[]? _folded;   // the base with the changes applied, made by the first reader

    sealed record Change(int Position, BackendGauges Gauges, Change? Older);

    public static BackendGaugesSnapshot Empty { get; } = new([], null, 0);

    BackendGaugesSnapshot(BackendGauges[] all, Change? changes, int changeCount)
    {
        _base = all;
        _changes = changes;
        _changeCount = changeCount;
        if (changes is null) _folded = all;
    }

    /// <summary>A snapshot of these gauges, in this order (the array is kept: never write it again).</summary>
    public static BackendGaugesSnapshot Of(BackendGauges[] all) => new(all, null, 0);

    /// <summary>A new snapshot with these positions' gauges replaced; this one does not change.</summary>
    public BackendGaugesSnapshot With(ReadOnlySpan<(int Position, BackendGauges Gauges)> changes)
    {
        if (_changeCount + changes.Length > Math.Max(64, _base.Length))
        {
            var all = _folded is { } folded ? folded.ToArray() : Folded();
            foreach (var (position, gauges) in changes) all[position] = gauges;
            return new(all, null, 0);
        }
        var list = _changes;
        foreach (var (position, gauges) in changes) list = new Change(position, gauges, list);
        return new(_base, list, _changeCount + changes.Length);
    }

    public int Count => _base.Length;

    public BackendGauges this[int index] => Fold()[index];

    // Racing readers may both fold; they make equal arrays, and either is kept.
    BackendGauges[] Fold() => _folded ??= Folded();

    BackendGauges[] Folded()
    {
        var all = _base.ToArray();
        var applied = new bool[all.Length];
        for (var c = _changes; c is not null; c = c.Older) // newest first: the first seen of a position wins
        {
            if (applied[c.Position]) continue;
            applied[c.Position] = true;
            all[c.Position] = c.Gauges;
        }
        return all;
    }

    public IEnumerator<BackendGauges> GetEnumerator() => ((IEnumerable<BackendGauges>)Fold()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
