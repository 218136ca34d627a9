using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

/// <summary>A backend moved to State (logged once, at Information). Removed: drained and gone.
/// NoneEligible: this change took the last eligible backend out (also logged as a warning).
/// Why is the rule that decided it, with its evidence; Reason is its text, formatted once here,
/// so the log line and /status's stateReason say the same thing.</summary>
public sealed record StateChange(BackendRoute Backend, BackendHealth State, StateReason Why, bool Removed = false, bool NoneEligible = false)
{
    public string Reason { get; } = Why.Text;
}

/// <summary>Why a backend's state changed: one record per rule, carrying what the rule saw.
/// Text is for people; the fields are for anything that wants to count or compare.</summary>
public abstract record StateReason
{
    public abstract string Text { get; }
    public sealed override string ToString() => Text;

    /// <summary>A reload added it (a backend present at startup has no reason yet).</summary>
    public sealed record Added : StateReason
    {
        public override string Text => "added";
    }

    /// <summary>The first probe of a backend in state unknown passed.</summary>
    public sealed record FirstProbePassed(int? Status) : StateReason
    {
        public override string Text => $"probe passed: {Status}";
    }

    /// <summary>healthyThreshold probes in a row passed.</summary>
    public sealed record ProbesPassed(int Count, int? Status) : StateReason
    {
        public override string Text => $"{Count} passed probes: {Status}";
    }

    /// <summary>unhealthyThreshold probes in a row failed; the last one's error or status.</summary>
    public sealed record ProbesFailed(int Count, int? Status, string? Error) : StateReason
    {
        public override string Text => $"{Count} failed probes: {Error ?? $"status {Status}"}";
    }

    /// <summary>Passive health: consecutiveFailures real requests in a row failed.</summary>
    public sealed record Ejected(int Failures, Outcome Last, TimeSpan For, bool WasLastEligible) : StateReason
    {
        public override string Text =>
            $"{Failures} failed requests in a row (last: {Last.Describe()}); ejected for {Durations.Format(For)}"
            + (WasLastEligible ? "; it was the last eligible backend: clients get 503 until one recovers" : "");
    }

    public sealed record EjectionEnded : StateReason
    {
        public override string Text => "ejection ended";
    }

    /// <summary>A reload removed it; it drains the requests it still has.</summary>
    public sealed record RemovedFromConfig(int InFlight) : StateReason
    {
        public override string Text => $"removed from the configuration; {InFlight} requests in flight";
    }

    /// <summary>DNS discovery found a new address of a discovered host.</summary>
    public sealed record Discovered(string Address) : StateReason
    {
        public override string Text => $"discovered at {Address}";
    }

    /// <summary>A discovered address is no longer in DNS; it drains the requests it still has.</summary>
    public sealed record VanishedFromDns(string Address, int InFlight) : StateReason
    {
        public override string Text => $"{Address} is no longer in DNS; {InFlight} requests in flight";
    }

    /// <summary>A reload brought back a backend that was still draining.</summary>
    public sealed record BackInConfig : StateReason
    {
        public override string Text => "back in the configuration";
    }

    /// <summary>Its last request ended after it was removed: it is gone.</summary>
    public sealed record Drained : StateReason
    {
        public override string Text => "drained; its connection pool is closed";
    }
}
