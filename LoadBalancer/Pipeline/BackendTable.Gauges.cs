using System.Runtime.InteropServices;
using LoadBalancer.Admin;

namespace LoadBalancer.Pipeline;

// The gauges of BackendTable (see BackendTable.cs): one immutable snapshot per loop turn in which
// an in-flight count, an eligibility or a connection count moved; /metrics reads the snapshot,
// never the table. The entries that moved are the index's (BackendIndex.TakeDirty), so a turn
// costs what moved, not every backend: the next snapshot shares the rest with the last one.
public sealed partial class BackendTable
{
    readonly List<BackendEntry> _moved = [];
    readonly List<(int, BackendGauges)> _gaugeChanges = [];

    /// <summary>Called by the state loop after each turn: publishes the backends' gauges for
    /// /metrics when one moved (nothing new when nothing did).</summary>
    public void PublishGauges()
    {
        if (_metrics is null) return;
        if (_metrics.QueueLength != _queue.Count) _metrics.QueueLength = _queue.Count;
        _index.TakeDirty(_moved);
        var published = _metrics.Published;
        if (_gaugesChanged) // the set of backends moved: all of them, in the table's order
        {
            _gaugesChanged = false;
            _moved.Clear();
            var gauges = new BackendGauges[_entries.Count];
            for (var i = 0; i < gauges.Length; i++)
            {
                var e = _entries[i];
                e.GaugePosition = i;
                gauges[i] = e.PublishedGauges = Gauges(e);
            }
            if (!gauges.AsSpan().SequenceEqual(published.ToArray())) _metrics.Publish(BackendGaugesSnapshot.Of(gauges));
            return;
        }
        foreach (var e in _moved)
        {
            var g = Gauges(e);
            if (g == e.PublishedGauges) continue;
            e.PublishedGauges = g;
            _gaugeChanges.Add((e.GaugePosition, g));
        }
        _moved.Clear();
        if (_gaugeChanges.Count == 0) return; // e.g. a pick and its outcome in one turn
        _metrics.Publish(published.With(CollectionsMarshal.AsSpan(_gaugeChanges)));
        _gaugeChanges.Clear();
    }

    static BackendGauges Gauges(BackendEntry e) => new(e.Route.Url, e.InFlight, e.OpenConnections, e.Eligible, e.Route.Address);
}
