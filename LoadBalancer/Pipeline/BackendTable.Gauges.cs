using LoadBalancer.Admin;

namespace LoadBalancer.Pipeline;

// The gauges of BackendTable (see BackendTable.cs): one immutable snapshot per loop turn in which
// an in-flight count, an eligibility, a connection count or the set of backends moved; /metrics
// reads the snapshot, never the table.
public sealed partial class BackendTable
{
    /// <summary>Called by the state loop after each turn: publishes every backend's gauges for
    /// /metrics when one moved (at most one small array a turn; none when nothing moved).</summary>
    public void PublishGauges()
    {
        if (_metrics is null) return;
        if (_metrics.QueueLength != _queue.Count) _metrics.QueueLength = _queue.Count;
        if (!_gaugesChanged) return;
        _gaugesChanged = false;
        var published = _metrics.Published;
        if (published.Length == _entries.Count && Same(published)) return; // e.g. a pick and its outcome in one turn
        var gauges = new BackendGauges[_entries.Count];
        for (var i = 0; i < gauges.Length; i++)
        {
            var e = _entries[i];
            gauges[i] = new BackendGauges(e.Route.Url, e.InFlight, e.OpenConnections, e.Eligible, e.Route.Address);
        }
        _metrics.Publish(gauges);
    }

    bool Same(BackendGauges[] published)
    {
        for (var i = 0; i < published.Length; i++)
        {
            var e = _entries[i];
            if (published[i] != new BackendGauges(e.Route.Url, e.InFlight, e.OpenConnections, e.Eligible, e.Route.Address)) return false;
        }
        return true;
    }
}
