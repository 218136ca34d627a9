using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// One backend's mutable state. Lives in BackendTable and is only ever touched on the state
// task (BackendState's loop), so plain fields and no locks are correct here.
// Every setter of something a pick depends on (eligibility, the in-flight count and limit, the
// effective weight, slow start, round-robin's running weight) tells the table's BackendIndex
// (Moved), so that the index never has to look at the backends that did not move.
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
    public long EffectiveWeight { get => _effectiveWeight; set { _effectiveWeight = value; Index?.Moved(this); } }
    long _effectiveWeight = weight * SlowStart.Scale;

    /// <summary>Slow start: since when it warms up (null: at full weight).</summary>
    public DateTimeOffset? WarmingSince { get => _warmingSince; set { _warmingSince = value; Index?.Moved(this); } }
    DateTimeOffset? _warmingSince;

    /// <summary>Its in-flight limit (backends[].maxInFlight, else limits.maxInFlightPerBackend); 0: none.</summary>
    public int MaxInFlight { get => _maxInFlight; set { _maxInFlight = value; Index?.Moved(this); } }
    int _maxInFlight;

    /// <summary>Under its limit: a pick may take one more slot.</summary>
    public bool HasSlot => MaxInFlight == 0 || InFlight < MaxInFlight;

    /// <summary>Passive health wanted to eject it but maxEjectionPercent said no (logged once per episode).</summary>
    public bool EjectionRefused { get; set; }

    /// <summary>The pool settings Route was built with.</summary>
    internal PoolConfig? Pool { get; set; }

    // Active health: unknown until the first probe, then thresholds decide.
    public BackendHealth Active { get => _active; set { _active = value; Index?.Moved(this); } }
    BackendHealth _active = BackendHealth.Unknown;
    public int PassedProbes { get; set; }
    public int FailedProbes { get; set; }
    public ProbeResult? LastProbe { get; set; }

    // Passive health: consecutive failed real requests; ejected until EjectedUntil.
    public int ConsecutiveFailures { get; set; }
    public DateTimeOffset? EjectedUntil { get => _ejectedUntil; set { _ejectedUntil = value; Index?.Moved(this); } }
    DateTimeOffset? _ejectedUntil;

    /// <summary>A reload removed it: it leaves the table when its last request ends.</summary>
    public bool Draining { get => _draining; set { _draining = value; Index?.Moved(this); } }
    bool _draining;

    /// <summary>An operator drained it (POST /backends/drain): it stays in the table, out of
    /// picks, until undrained. A reload that keeps the backend keeps the drain.</summary>
    public bool OperatorDrain { get => _operatorDrain; set { _operatorDrain = value; Index?.Moved(this); } }
    bool _operatorDrain;

    /// <summary>The "drained" event of the current operator drain has been reported.</summary>
    internal bool DrainReported { get; set; }

    // The evidence of the current runs, for the change a rule makes when a run reaches its
    // threshold: the probes of the current pass-or-fail run and the current run of failed
    // requests. At most EvidenceKept each (the newest): memory stays bounded whatever the thresholds.
    internal const int EvidenceKept = 10;
    internal List<Evidence> ProbeRun { get; } = [];
    internal List<Evidence> FailureRun { get; } = [];

    internal static void Keep(List<Evidence> run, Evidence e)
    {
        if (run.Count == EvidenceKept) run.RemoveAt(0);
        run.Add(e);
    }

    /// <summary>consistent-hash's per-backend seed: the same for this backend in every balancer.</summary>
    public ulong HashSeed { get; } = Balancing.KeyHash.Of(route.Identity);

    /// <summary>The affinity cookie value that names this backend (null: affinity off). Set by BackendTable.</summary>
    public string? AffinityToken { get; set; }

    /// <summary>The last change of State, as logged (null until the first): /status's stateReason.</summary>
    public StateChange? LastChange { get; set; }

    public int InFlight { get => _inFlight; set { _inFlight = value; Index?.Moved(this); } }
    int _inFlight;
    public long Requests { get; set; }
    public long Failures { get; set; }
    public int OpenConnections { get => _openConnections; set { _openConnections = value; Index?.Touched(this); } }
    int _openConnections;

    /// <summary>Smooth weighted round-robin's running weight (nginx's current_weight). While the
    /// backend is in one of SmoothRoundRobin's heaps it is kept there as a line (Intercept +
    /// rounds x weight), so a pick does not have to add the weight of every backend.</summary>
    public long CurrentWeight
    {
        get => Heap is { } h ? h.CurrentWeight(this) : RunningWeight;
        set { if (Heap is { } h) h.SetCurrentWeight(this, value); else RunningWeight = value; }
    }
    /// <summary>CurrentWeight while in no heap.</summary>
    internal long RunningWeight;

    // ---- the index's bookkeeping (BackendIndex, SmoothRoundRobin): state task only ----------

    /// <summary>The index this entry reports its moves to (null: not in a table, or not yet).</summary>
    internal BackendIndex? Index { get; set; }
    /// <summary>Its position in the index: the table's order when the index was last built.</summary>
    internal int Slot { get; set; } = -1;
    /// <summary>Tried by the pick being made (BackendTable marks and unmarks it around the pick).</summary>
    internal bool Excluded { get => _excluded; set { _excluded = value; Index?.Moved(this); } }
    bool _excluded;
    // What the index counted it as, last time it looked.
    internal bool IndexedCandidate, IndexedEligible, IndexedEjected, IndexedConfigured;
    internal long IndexedWeight, IndexedInFlight;
    internal int WarmingPosition = -1;   // in BackendIndex.Warming, or -1
    internal bool GaugesDirty;          // in BackendIndex's list of entries whose gauges may have moved
    internal int GaugePosition = -1;     // its place in the gauges last published in full
    internal Admin.BackendGauges PublishedGauges; // its gauges as last published
    // Round-robin: the weight class heap it is in (null: none), its place there, its line's intercept.
    internal Balancing.SmoothRoundRobin.WeightClass? Heap;
    internal int HeapPosition = -1;
    internal long Intercept;

    public BackendHealth State =>
        Draining || OperatorDrain ? BackendHealth.Draining : EjectedUntil is not null ? BackendHealth.Ejected : Active;

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
