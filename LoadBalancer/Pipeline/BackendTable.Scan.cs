using LoadBalancer.Balancing;
using System.Runtime.InteropServices;

namespace LoadBalancer.Pipeline;

// Picks as they were before the BackendIndex: a scan of every backend for the candidates, and the
// policy's Choose over that span. /explain uses the scan (it is not on the pick path), and
// ReferencePicks makes a whole table pick this way: the reference the index's property tests
// hold it to (BackendIndexPropertyTests).
public sealed partial class BackendTable
{
    // The candidates as before the index (for /explain and ReferencePicks): fills _eligible by a
    // scan of every backend. Returns how many were eligible and untried, limit or not.
    int ScanCandidates(BackendRoute[]? exclude, DateTimeOffset now)
    {
        _eligible.Clear();
        var untried = 0;
        foreach (var e in _entries)
        {
            if (!e.Eligible || exclude is not null && Tried(exclude, e.Route.Identity)) continue;
            untried++;
            if (!e.HasSlot) continue;
            if (e.WarmingSince is not null) Warm(e, now);
            _eligible.Add(e);
        }
        return untried;
    }

    BackendEntry ChooseByScan(RequestKey key)
    {
        var eligible = CollectionsMarshal.AsSpan(_eligible);
        return key.Hash is { } hash ? _policy.Choose(eligible, new PickContext(hash)) : _policy.Choose(eligible);
    }

    // By identity, not by route: a pool reload may have given a tried backend a new route since.
    static bool Tried(BackendRoute[] tried, string identity)
    {
        foreach (var r in tried)
            if (r.Identity == identity) return true;
        return false;
    }
}
