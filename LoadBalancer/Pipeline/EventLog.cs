namespace LoadBalancer.Pipeline;

// The last Capacity state changes, oldest first, for GET /events?since=N. A ring owned by
// BackendTable (state task only, so plain fields): a change is added as it leaves the table;
// /events reads a copy through the state task's request channel, as /status does.
public sealed class EventLog
{
    public const int Capacity = 1000;

    readonly StateChange[] _ring = new StateChange[Capacity];
    int _start, _count;

    public void Add(StateChange change)
    {
        var end = (_start + _count) % Capacity;
        _ring[end] = change;
        if (_count < Capacity) _count++;
        else _start = (_start + 1) % Capacity; // full: the oldest goes
    }

    /// <summary>The kept changes with Seq &gt; since, oldest first; Next is the last one's Seq
    /// (since itself when there is none), to pass as the next since.</summary>
    public EventsPage Since(long since)
    {
        var list = new List<StateChange>();
        for (var i = 0; i < _count; i++)
        {
            var c = _ring[(_start + i) % Capacity];
            if (c.Seq > since) list.Add(c);
        }
        return new EventsPage(list.ToArray(), list.Count == 0 ? since : list[^1].Seq);
    }
}

public sealed record EventsPage(StateChange[] Events, long Next);
