using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// One backend's mutable state. Lives in BackendTable and is only ever touched on the state
// task (BackendState's loop), so plain fields and no locks are correct here.
public sealed class BackendEntry(BackendRoute route, int weight)
{
    /// <summary>Where new picks go. A reload that changes pool.* replaces it (see BackendTable.ReplaceRoute).</summary>
    public BackendRoute Route { get; internal set; } = route;
    public int Weight
    {
        get => _weight;
        set { _weight = value; EffectiveWeight = value * SlowStart.Scale; }
    }
    int _weight = weight;

    /// <summary>The weight the policies use, in thousandths (SlowStart.Scale): Weight, or less while
    /// it warms up. Set by BackendTable before each pick.</summary>
    public long EffectiveWeight { get; set; } = weight * SlowStart.Scale;

    /// <summary>Slow start: since when it warms up (null: at full weight).</summary>
    public DateTimeOffset? WarmingSince { get; set; }

    /// <summary>Its in-flight limit (backends[].maxInFlight, else limits.maxInFlightPerBackend); 0: none.</summary>
    public int MaxInFlight { get; set; }

    /// <summary>Under its limit: a pick may take one more slot.</summary>
    public bool HasSlot => MaxInFlight == 0 || InFlight < MaxInFlight;

    /// <summary>Passive health wanted to eject it but maxEjectionPercent said no (logged once per episode).</summary>
    public bool EjectionRefused { get; set; }

    /// <summary>The pool settings Route was built with.</summary>
    internal PoolConfig? Pool { get; set; }

    // Active health: unknown until the first probe, then thresholds decide.
    public BackendHealth Active { get; set; } = BackendHealth.Unknown;
    public int PassedProbes { get; set; }
    public int FailedProbes { get; set; }
    public ProbeResult? LastProbe { get; set; }

    // Passive health: consecutive failed real requests; ejected until EjectedUntil.
    public int ConsecutiveFailures { get; set; }
    public DateTimeOffset? EjectedUntil { get; set; }

    public bool Draining { get; set; }

    /// <summary>The last change of State, as logged (null until the first): /status's stateReason.</summary>
    public StateChange? LastChange { get; set; }

    public int InFlight { get; set; }
    public long Requests { get; set; }
    public long Failures { get; set; }
    public int OpenConnections { get; set; }

    /// <summary>Smooth weighted round-robin's running weight (nginx's current_weight).</summary>
    public long CurrentWeight { get; set; }

    public BackendHealth State =>
        Draining ? BackendHealth.Draining : EjectedUntil is not null ? BackendHealth.Ejected : Active;

    public bool Eligible => State is BackendHealth.Unknown or BackendHealth.Healthy;

    public override string ToString() => $"{Route.Url} {State.Label()}";
}

// A route that a pool.* reload replaced while requests were still in flight on it. It lives until
// the last of them reports its outcome, then its pool is disposed. State task only, like the entry.
sealed class RetiredRoute(BackendRoute route, BackendEntry entry)
{
    public BackendRoute Route { get; } = route;
    public BackendEntry Entry { get; } = entry;

    /// <summary>Of Entry.InFlight, the requests still on this route.</summary>
    public int InFlight { get; set; }

    /// <summary>Of Entry.OpenConnections, the ones in this route's pool.</summary>
    public int OpenConnections { get; set; }
}
