using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// Everything a BackendTable holds that its future answers depend on, as data: what a journal
// file that starts after a rotation begins with (JournalEntry.Checkpoint), so a replay can build
// the table as it was at that point and go on from there. Taken and restored by
// BackendTable.Checkpoint.cs. Left out: what only /status and /events show of the past (each
// backend's last change, the events ring); a replay from a checkpoint shows the changes after it.
public sealed record TableCheckpoint(
    int LastRoute,
    long Seq,
    int Generation,
    DateTimeOffset ConfigLoadedAt,
    string? ConfigError,
    string? AffinitySecret,
    BackendCheckpoint[] Backends,
    RetiredCheckpoint[] Retired,
    DiscoveredCheckpoint[] Discovered,
    WaiterCheckpoint[] Queue,
    long LastWaiter,
    long BudgetNow,
    int[] BudgetSlots,
    GoneRoute[] Gone);

/// <summary>A route the table no longer has (its backend removed, or a retired pool closed), of the
/// last Kept: a retry after the checkpoint may still name it in its exclude list, which the table
/// compares by identity.</summary>
public sealed record GoneRoute(int Route, string Url, string Key, string? Address)
{
    public const int Kept = 1024;
}

/// <summary>One backend, in table order. Backend: what its route was made from.</summary>
public sealed record BackendCheckpoint(
    int Route, BackendConfig Backend, PoolConfig? Pool, int Weight, int MaxInFlight, long EffectiveWeight, DateTimeOffset? WarmingSince,
    bool EjectionRefused, BackendHealth Active, int PassedProbes, int FailedProbes, JournalEntry.Probed? LastProbe,
    int ConsecutiveFailures, DateTimeOffset? EjectedUntil, bool Draining, bool OperatorDrain, bool DrainReported,
    Evidence[] ProbeRun, Evidence[] FailureRun, int InFlight, long Requests, long Failures, int OpenConnections, long CurrentWeight);

/// <summary>A replaced route still finishing requests; Backend: its entry's current route.</summary>
public sealed record RetiredCheckpoint(int Route, int Backend, BackendConfig Config, int InFlight, int OpenConnections);

public sealed record DiscoveredCheckpoint(string Backend, string[] Addresses, string? Error);

/// <summary>A queued pick: its number in the journal, its request, its times and waiter id.</summary>
public sealed record WaiterCheckpoint(long Pick, int[]? Exclude, ulong? Hash, string? Affinity, DateTimeOffset Enqueued, DateTimeOffset Deadline, long Id);
