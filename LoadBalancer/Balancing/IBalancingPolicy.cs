using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

/// <summary>Chooses one of the eligible backends (never empty). Pure: no I/O, no clock;
/// called only on the state task, so it may keep plain fields.</summary>
/// <remarks>Two ways to say the same choice: over the span of candidates in the table's order
/// (the rule as written, O(n): /explain's dry run shares it, and the tests hold the other to it),
/// and over the table's BackendIndex, which is what a pick calls (O(log n) for the built-in
/// policies but consistent-hash with a key).</remarks>
public interface IBalancingPolicy
{
    BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible);

    /// <summary>What Choose over candidates.Candidates() would choose, with the same state changes
    /// and the same random draws. The default does exactly that (a scan of every backend).</summary>
    /// <param name="context">The request's hash key, when it has one.</param>
    BackendEntry Choose(BackendIndex candidates, PickContext? context) =>
        context is { } c ? Choose(candidates.Candidates(), c) : Choose(candidates.Candidates());

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
