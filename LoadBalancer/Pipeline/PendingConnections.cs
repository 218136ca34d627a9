namespace LoadBalancer.Pipeline;

// One route's pooled-connection opens and closes on their way to the state task, coalesced.
// The pool opens and closes connections on any thread, as fast as traffic churns them; the
// state task only needs the net change. So each route keeps a running delta, and at most one
// ConnectionsChanged for it is ever queued (or waiting for room in a full events channel): what
// waits is bounded by the number of routes, not by the churn.
//
// Why nothing is lost (both fields change only through Interlocked, so all threads see one
// order of those changes):
//   writer (any thread):  Add(ref _delta, d);            then  Exchange(ref _queued, 1): was 0? send one
//   reader (state task):  Exchange(ref _queued, 0);      then  Exchange(ref _delta, 0): apply that
// A writer that finds the flag set added its delta before it looked, and it looked before the
// reader cleared the flag, which is before the reader takes: that take includes the delta.
// A writer that finds the flag clear sends a notification itself, whose take comes later still.
// The reverse order in the reader (take, then clear) would lose a delta added between the two:
// its writer sees the flag still set and sends nothing, and no take follows.
// The only cost of this order: a delta added between the clear and the take is taken early, and
// the notification its writer sent finds 0 (harmless).
public sealed class PendingConnections
{
    int _delta;  // opened minus closed, not yet taken by the state task
    int _queued; // 1 while a notification is queued and its take has not begun

    /// <summary>Any thread. True when the caller must send the notification (none is queued).</summary>
    public bool Add(int delta)
    {
        Interlocked.Add(ref _delta, delta);
        return Interlocked.Exchange(ref _queued, 1) == 0;
    }

    /// <summary>State task, once per notification: the net change since the last take.</summary>
    public int Take()
    {
        Interlocked.Exchange(ref _queued, 0); // first: from here on, a writer sends again
        return Interlocked.Exchange(ref _delta, 0);
    }
}
