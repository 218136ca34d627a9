using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

/// <summary>Chooses one of the eligible backends (never empty). Pure: no I/O, no clock;
/// called only on the state task, so it may keep plain fields.</summary>
public interface IBalancingPolicy
{
    BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible);
}
