namespace LoadBalancer.Pipeline;

/// <summary>A backend moved to State (logged once, at Information). Removed: drained and gone.</summary>
public sealed record StateChange(BackendRoute Backend, BackendHealth State, string Reason, bool Removed = false);
