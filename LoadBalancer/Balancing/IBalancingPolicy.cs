using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

/// <summary>Chooses one of the eligible backends (never empty). Pure: no I/O, no clock;
/// called only on the state task, so it may keep plain fields.</summary>
public interface IBalancingPolicy
{
    BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible);

    /// <summary>A pick for a request that has a hash key (consistent-hash uses it; the others
    /// ignore it and choose as without).</summary>
    BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible, PickContext context) => Choose(eligible);
}

/// <summary>What a policy may know of the request: its hash key (see KeyHash), when it has one.</summary>
public readonly record struct PickContext(ulong Key);
