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

    /// <summary>GET /explain: what Choose would pick now and the rule in words, without doing it:
    /// no cursor moves, no running weight changes, and any random draw comes from draw, never from
    /// the live source (so the live sequence, and a journal's replay, stay as they were).</summary>
    PolicyChoice Explain(ReadOnlySpan<BackendEntry> eligible, Random draw) =>
        new(null, $"{GetType().Name} has no dry run");
}

/// <summary>A dry run's answer: the backend Choose would pick (null: the policy cannot say) and why.</summary>
public readonly record struct PolicyChoice(BackendEntry? Chosen, string Rule);

/// <summary>What a policy may know of the request: its hash key (see KeyHash), when it has one.</summary>
public readonly record struct PickContext(ulong Key);
