namespace LoadBalancer.Pipeline;

// One backend's mutable state. Lives in BackendTable and is only ever touched on the state
// task (BackendState's loop), so plain fields and no locks are correct here.
public sealed class BackendEntry(BackendRoute route, int weight)
{
    public BackendRoute Route { get; } = route;
    public int Weight { get; set; } = weight;

    // Active health: unknown until the first probe, then thresholds decide.
    public BackendHealth Active { get; set; } = BackendHealth.Unknown;
    public int PassedProbes { get; set; }
    public int FailedProbes { get; set; }
    public ProbeResult? LastProbe { get; set; }

    // Passive health: consecutive failed real requests; ejected until EjectedUntil.
    public int ConsecutiveFailures { get; set; }
    public DateTimeOffset? EjectedUntil { get; set; }

    public bool Draining { get; set; }

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
