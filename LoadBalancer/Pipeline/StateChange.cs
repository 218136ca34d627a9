namespace LoadBalancer.Pipeline;

/// <summary>A backend moved to State (logged once, at Information). Removed: drained and gone.
/// NoneEligible: this change took the last eligible backend out (also logged as a warning).</summary>
public sealed record StateChange(BackendRoute Backend, BackendHealth State, string Reason, bool Removed = false, bool NoneEligible = false);
