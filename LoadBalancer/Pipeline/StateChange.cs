using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

/// <summary>A backend moved to State (logged once, at Information). Removed: drained and gone.
/// NoneEligible: this change took the last eligible backend out (also logged as a warning).
/// Why is the rule that decided it; Evidence the inputs the rule saw (probe results, request
/// outcomes, an operator's call). One record, three views: the log line, /events, and /status's
/// stateReason (Reason is its text, formatted once here). Seq, At and From are set by the table
/// when the change leaves it (BackendTable.Report).</summary>
public sealed record StateChange(BackendRoute Backend, BackendHealth State, StateReason Why, bool Removed = false, bool NoneEligible = false)
{
    public string Reason { get; } = Why.Text;

    /// <summary>1, 2, 3... per table: /events?since=N cursors on it.</summary>
    public long Seq { get; init; }
    public DateTimeOffset At { get; init; }
    public BackendHealth From { get; init; }
    public Evidence[] Evidence { get; init; } = [];

    /// <summary>What /events shows as "to": the state, or "drained" (an operator's drain is
    /// complete: nothing in flight) or "removed" (a backend removed by a reload has drained and left).</summary>
    public string To => Removed ? "removed" : Why is StateReason.DrainComplete ? "drained" : State.Label();
}

/// <summary>One input that decided a change: a probe result, a request outcome, an operator's call,
/// a reload, the clock. Result is it in words ("status 200", "connection refused").</summary>
public sealed record Evidence(string Kind, DateTimeOffset At, string Result, int? Status = null, double? LatencyMs = null)
{
    public const string Probe = "probe", Request = "request", Operator = "operator", Config = "config", Clock = "clock", Dns = "dns";

    public static Evidence Of(ProbeResult p) => new(Probe, p.At,
        p.Error ?? $"status {p.Status}", p.Status, Math.Round(p.Latency.TotalMilliseconds, 3));

    public override string ToString() => $"{Kind} {Result}";
}

/// <summary>Why a backend's state changed: one record per rule, carrying what the rule saw.
/// Rule names the rule (a config key where there is one, so the reader can find the knob); Text is
/// for people and always ends with the rule in brackets; the fields are for anything that counts.</summary>
public abstract record StateReason
{
    public abstract string Rule { get; }
    protected abstract string Detail { get; }
    public string Text => $"{Detail} [{Rule}]";
    public sealed override string ToString() => Text;

    public const string FirstProbeRule = "healthCheck: first probe", HealthyRule = "healthCheck.healthyThreshold",
        UnhealthyRule = "healthCheck.unhealthyThreshold", EjectRule = "passiveHealth.consecutiveFailures",
        EjectEndRule = "passiveHealth.ejectFor", ReloadRule = "reload", DrainRule = "drain", DiscoveryRule = "discovery";

    /// <summary>A reload added it (a backend present at startup has no reason yet).</summary>
    public sealed record Added : StateReason
    {
        public override string Rule => ReloadRule;
        protected override string Detail => "added";
    }

    /// <summary>The first probe of a backend in state unknown passed.</summary>
    public sealed record FirstProbePassed(int? Status) : StateReason
    {
        public override string Rule => FirstProbeRule;
        protected override string Detail => $"probe passed: {Status}";
    }

    /// <summary>healthyThreshold probes in a row passed.</summary>
    public sealed record ProbesPassed(int Count, int? Status) : StateReason
    {
        public override string Rule => HealthyRule;
        protected override string Detail => $"{Count} passed probes: {Status}";
    }

    /// <summary>unhealthyThreshold probes in a row failed; the last one's error or status.</summary>
    public sealed record ProbesFailed(int Count, int? Status, string? Error) : StateReason
    {
        public override string Rule => UnhealthyRule;
        protected override string Detail => $"{Count} failed probes: {Error ?? $"status {Status}"}";
    }

    /// <summary>Passive health: consecutiveFailures real requests in a row failed.</summary>
    public sealed record Ejected(int Failures, Outcome Last, TimeSpan For, bool WasLastEligible) : StateReason
    {
        public override string Rule => EjectRule;
        protected override string Detail =>
            $"{Failures} failed requests in a row (last: {Last.Describe()}); ejected for {Durations.Format(For)}"
            + (WasLastEligible ? "; it was the last eligible backend: clients get 503 until one recovers" : "");
    }

    public sealed record EjectionEnded : StateReason
    {
        public override string Rule => EjectEndRule;
        protected override string Detail => "ejection ended";
    }

    /// <summary>A reload removed it; it drains the requests it still has.</summary>
    public sealed record RemovedFromConfig(int InFlight) : StateReason
    {
        public override string Rule => ReloadRule;
        protected override string Detail => $"removed from the configuration; {InFlight} requests in flight";
    }

    /// <summary>DNS discovery found a new address of a discovered host.</summary>
    public sealed record Discovered(string Address) : StateReason
    {
        public override string Rule => DiscoveryRule;
        protected override string Detail => $"discovered at {Address}";
    }

    /// <summary>A discovered address is no longer in DNS; it drains the requests it still has.</summary>
    public sealed record VanishedFromDns(string Address, int InFlight) : StateReason
    {
        public override string Rule => DiscoveryRule;
        protected override string Detail => $"{Address} is no longer in DNS; {InFlight} requests in flight";
    }

    /// <summary>A reload brought back a backend that was still draining.</summary>
    public sealed record BackInConfig : StateReason
    {
        public override string Rule => ReloadRule;
        protected override string Detail => "back in the configuration";
    }

    /// <summary>Its last request ended after it was removed: it is gone.</summary>
    public sealed record Drained : StateReason
    {
        public override string Rule => ReloadRule;
        protected override string Detail => "drained; its connection pool is closed";
    }

    /// <summary>An operator drained it (POST /backends/drain): no new requests; in-flight ones finish.</summary>
    public sealed record OperatorDrain(int InFlight) : StateReason
    {
        public override string Rule => DrainRule;
        protected override string Detail => $"drained by the operator; {InFlight} requests in flight finish";
    }

    /// <summary>An operator's drain has no request left in flight (the "drained" event; State stays draining).</summary>
    public sealed record DrainComplete : StateReason
    {
        public override string Rule => DrainRule;
        protected override string Detail => "drained: no request in flight; it stays out until undrained";
    }

    /// <summary>An operator undrained it (POST /backends/undrain): back to its health state.</summary>
    public sealed record OperatorUndrain : StateReason
    {
        public override string Rule => DrainRule;
        protected override string Detail => "undrained by the operator";
    }
}
