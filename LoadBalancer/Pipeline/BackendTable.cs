using LoadBalancer.Admin;
using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace LoadBalancer.Pipeline;

// The rules: thresholds, ejection, draining, picking. Plain synchronous code over plain fields,
// owned by BackendState and called only from its loop, so tests call it directly.
// Every state change is reported once through onChange (BackendState logs it) and kept on the
// entry for /status. Gauges are published as one snapshot per loop turn (PublishGauges).
// A backend is one BackendEntry for its whole life; its BackendRoute (the pool requests go
// through) is replaced when a reload changes pool.*, and the old one lives on, retired, until
// the requests still using it end. Messages name a route; _byId finds its entry either way.
// Split by rule: this file holds picks and health; BackendTable.Scan.cs the picks by a scan of
// every backend (/explain, and the reference the index is tested against); BackendTable.Config.cs a reload (Reconcile);
// BackendTable.Routes.cs the
// pool swap (retired routes); BackendTable.Gauges.cs the gauge snapshot for /metrics;
// BackendTable.Admission.cs the admission rules (limits, the queue, the retry budget, slow start,
// maxEjectionPercent), whose plain parts live in Admission.cs, RetryBudget.cs and SlowStart.cs;
// BackendTable.Affinity.cs the affinity cookie's tokens; BackendTable.Discovery.cs the
// addresses DNS discovery found.
// A pick and an outcome cost the same with 3 backends or 3,000 (issue 16): they read the
// BackendIndex, which every entry keeps up to date as it moves, instead of scanning _entries.
public sealed partial class BackendTable
{
    readonly List<BackendEntry> _entries = [];
    readonly Dictionary<int, BackendEntry> _byId = [];       // route id -> entry, current and retired routes
    readonly Dictionary<string, BackendEntry> _byIdentity = []; // route identity -> entry (a retry's tried list names routes)
    readonly Dictionary<int, RetiredRoute> _retired = [];   // route id -> a replaced route still in use
    readonly BackendIndex _index = new();
    readonly List<BackendEntry> _eligible = []; // scratch for ScanCandidates (/explain, ReferencePicks)
    readonly Func<BackendConfig, PoolConfig, BackendRoute> _createRoute;
    readonly TimeProvider _time;
    readonly Action<StateChange> _onChange;
    readonly LbMetrics? _metrics;
    Random? _random; // replaced at a checkpoint (Reseed)
    readonly ILogger _log;

    LbConfig _config;
    IBalancingPolicy _policy;
    DateTimeOffset _nextEjectionEnd = DateTimeOffset.MaxValue;
    bool _gaugesChanged = true; // the set of backends moved: publish every backend's gauges (one that moved tells the index)
    long _seq; // the last change's Seq

    /// <summary>For a createRoute that ignores pool.* (tests): a pool change still replaces routes.</summary>
    public BackendTable(LbConfig config, Func<BackendConfig, BackendRoute> createRoute, TimeProvider time,
        Action<StateChange> onChange, LbMetrics? metrics = null, Random? random = null, ILogger? log = null, Func<byte[]>? drawSecret = null)
        : this(config, (backend, _) => createRoute(backend), time, onChange, metrics, random, log, drawSecret)
    {
    }

    /// <param name="drawSecret">Where an affinity secret comes from when lb.json sets none (a new
    /// random one per process by default; the journal records each draw, a replay gives them back).</param>
    /// <param name="checkpoint">A replay from a journal file that begins with one: the table as it was
    /// there (the routes are made in its order: see BackendTable.Checkpoint.cs).</param>
    public BackendTable(LbConfig config, Func<BackendConfig, PoolConfig, BackendRoute> createRoute, TimeProvider time,
        Action<StateChange> onChange, LbMetrics? metrics = null, Random? random = null, ILogger? log = null, Func<byte[]>? drawSecret = null,
        TableCheckpoint? checkpoint = null)
    {
        _drawSecret = drawSecret ?? Affinity.NewSecret;
        _log = log ?? NullLogger.Instance;
        _createRoute = createRoute;
        _time = time;
        _onChange = onChange;
        _metrics = metrics;
        _random = random;
        _config = config;
        _policy = BalancingPolicies.Create(config.Balancing, random, config.HashBalanceFactor);
        _index.TrackGauges = metrics is not null;
        Forwarding = Settings(config);
        if (checkpoint is null) Reconcile(config);
        else Restore(checkpoint);
        _started = true;
        PublishGauges(); // every backend's series at 0 before anything happened to it
    }

    static ForwardingSettings Settings(LbConfig c) =>
        new(c.Retries, c.RequestTimeout, c.StreamIdleTimeout, c.TunnelIdleTimeout);

    bool _started; // the startup log line names the first backends; "added" is for reloads

    public LbConfig Config => _config;
    /// <summary>What /status shows of the configuration: generation 1 at startup, +1 per applied reload.</summary>
    public ConfigStatus ConfigStatus { get; private set; } = new(default, 0, null);
    public ForwardingSettings Forwarding { get; private set; }
    public IReadOnlyList<BackendEntry> Entries => _entries;

    /// <summary>The last 1000 changes, for /events.</summary>
    public EventLog Events { get; } = new();

    /// <summary>Replaces the policy (tests use this to inject a faulty one).</summary>
    public IBalancingPolicy Policy { get => _policy; set => _policy = value; }

    /// <summary>The index a pick reads (for tests: BackendIndex.Verify).</summary>
    internal BackendIndex Index => _index;

    /// <summary>Picks as before the index: a scan of every backend (ScanCandidates) and the
    /// policies' Choose over the span. The reference the property tests hold the index to.</summary>
    internal bool ReferencePicks { get; init; }

    // ---- picks ----------------------------------------------------------------------------

    /// <summary>One pick now, as the handlers' PickRequest without the queue and the retry budget
    /// (see Pick for those): a backend that is eligible, not in exclude and under its limit, or none.</summary>
    /// <param name="key">The request's hash key and affinity cookie (BackendTable.Affinity.cs), if any.</param>
    public Pick Choose(BackendRoute[]? exclude, RequestKey key = default)
    {
        ExpireEjections();
        Candidates(exclude, _time.GetUtcNow());
        try
        {
            return AnyCandidate ? Take(exclude, key: key) : new Pick(null, Forwarding, Refusal.NoBackend);
        }
        finally
        {
            Unmark(exclude);
        }
    }

    // Makes the index's candidates those of this pick: eligible, not tried (the tried ones are
    // marked Excluded until Unmark, which every caller runs in a finally), under their limit, each
    // with its effective weight for now (only the ones warming up move with the clock). Returns
    // how many are eligible and untried, limit or not. O(tried + warming), not O(backends).
    int Candidates(BackendRoute[]? exclude, DateTimeOffset now)
    {
        if (ReferencePicks) return ScanCandidates(exclude, now);
        var untried = _index.Eligible;
        if (exclude is not null)
            foreach (var r in exclude)
                if (_byIdentity.TryGetValue(r.Identity, out var e) && !e.Excluded)
                {
                    if (e.Eligible) untried--;
                    e.Excluded = true;
                }
        var warming = _index.Warming;
        for (var i = warming.Count - 1; i >= 0; i--) Warm(warming[i], now); // one whose ramp is over leaves the list
        return untried;
    }

    void Unmark(BackendRoute[]? exclude)
    {
        if (exclude is null || ReferencePicks) return;
        foreach (var r in exclude)
            if (_byIdentity.TryGetValue(r.Identity, out var e)) e.Excluded = false;
    }

    bool AnyCandidate => ReferencePicks ? _eligible.Count > 0 : _index.Count > 0;

    // The affinity cookie's backend, else the policy (with the request's hash key), chooses among
    // the candidates (never none); the chosen one's slot is taken here, the one place that counts,
    // so a limit can never be exceeded.
    Pick Take(BackendRoute[]? exclude, TimeSpan waited = default, RequestKey key = default)
    {
        var sticky = Sticky(key.Affinity);
        var chosen = sticky ?? (ReferencePicks ? ChooseByScan(key)
            : _policy.Choose(_index, key.Hash is { } hash ? new PickContext(hash) : null));
        chosen.InFlight++;
        if (exclude is { Length: > 0 }) _metrics?.Retry();
        // A new cookie unless the request's own named this backend (AffinityToken: null when affinity is off).
        return new Pick(chosen.Route, Forwarding, Refusal.None, waited, sticky is null ? chosen.AffinityToken : null);
    }

    public void Apply(RequestOutcome o)
    {
        if (!_byId.TryGetValue(o.Backend.Id, out var e)) return;
        e.InFlight--;
        if (o.Kind.Side() is not (Side.Client or Side.Balancer)) // never counted: not the backend's doing
        {
            e.Requests++;
            if (o.Status > 0) _metrics?.Response(e.Route.Url, o.Status, e.Route.Address);
            else _metrics?.Failure(e.Route.Url, o.Kind.Describe(), e.Route.Address);

            if (o.Kind.IsBackendFailure())
            {
                e.Failures++;
                e.ConsecutiveFailures++;
                BackendEntry.Keep(e.FailureRun, new Evidence(Evidence.Request, _time.GetUtcNow(), o.Kind.Describe(), o.Status > 0 ? o.Status : null));
                if (e.ConsecutiveFailures >= _config.PassiveHealth.ConsecutiveFailures && e.State is not (BackendHealth.Ejected or BackendHealth.Draining))
                {
                    if (MayEject(e)) Eject(e, o.Kind);
                }
            }
            else
            {
                e.ConsecutiveFailures = 0;
                if (e.FailureRun.Count > 0) e.FailureRun.Clear();
                e.EjectionRefused = false;
            }
        }
        if (_retired.TryGetValue(o.Backend.Id, out var old) && --old.InFlight == 0) Dispose(old);
        if (e.Draining && e.InFlight == 0) Remove(e);
        else if (e.OperatorDrain && e.InFlight == 0) DrainDone(e);
        Dispatch(); // the freed slot goes to the oldest waiter that can use it, in this same turn
    }

    void Eject(BackendEntry e, Outcome last)
    {
        var until = _time.GetUtcNow() + _config.PassiveHealth.EjectFor;
        var lastEligible = e.Eligible && _index.Eligible == 1;
        Change(e, () => e.EjectedUntil = until,
            new StateReason.Ejected(e.ConsecutiveFailures, last, _config.PassiveHealth.EjectFor, lastEligible), [.. e.FailureRun]);
        e.ConsecutiveFailures = 0;
        e.FailureRun.Clear();
        e.EjectionRefused = false;
        _metrics?.Ejection(e.Route.Url, e.Route.Address);
        if (until < _nextEjectionEnd) _nextEjectionEnd = until;
    }

    void ExpireEjections()
    {
        if (_nextEjectionEnd == DateTimeOffset.MaxValue) return;
        var now = _time.GetUtcNow();
        if (now < _nextEjectionEnd) return;
        _nextEjectionEnd = DateTimeOffset.MaxValue;
        foreach (var e in _entries)
        {
            if (e.EjectedUntil is not { } until) continue;
            if (until <= now)
                Change(e, () => e.EjectedUntil = null, new StateReason.EjectionEnded(),
                    [new Evidence(Evidence.Clock, now, $"ejectFor elapsed: ejected until {Durations.Clock(until)}")]);
            else if (until < _nextEjectionEnd) _nextEjectionEnd = until;
        }
    }

    /// <summary>Called by the state loop after each batch and when its timer fires: ends the
    /// ejections that are over, answers the waiters whose time is up, serves the ones that can go.</summary>
    public void Tick()
    {
        ExpireEjections();
        Dispatch();
    }

    /// <summary>When the next ejection ends (MaxValue: none).</summary>
    public DateTimeOffset NextEjectionEnd => _nextEjectionEnd;

    /// <summary>The nearest deadline of anything (an ejection's end, the oldest waiter's timeout;
    /// MaxValue: none), so the state loop's one timer wakes it on time even when no traffic comes.</summary>
    public DateTimeOffset NextDeadline => _nextEjectionEnd < _queue.NextDeadline ? _nextEjectionEnd : _queue.NextDeadline;

    // ---- active health --------------------------------------------------------------------

    public void Apply(ProbeResult r)
    {
        if (!_byId.TryGetValue(r.Backend.Id, out var e) || e.Draining) return;
        e.LastProbe = r;
        _metrics?.Probe(e.Route.Url, r.Latency, e.Route.Address);
        var hc = _config.HealthCheck;
        // The run of probes that agree: a pass after failures (or a failure after passes) starts a new one.
        if (r.Passed ? e.FailedProbes > 0 : e.PassedProbes > 0) e.ProbeRun.Clear();
        BackendEntry.Keep(e.ProbeRun, Evidence.Of(r));
        if (r.Passed)
        {
            e.PassedProbes++;
            e.FailedProbes = 0;
            if (e.Active == BackendHealth.Unknown)
                Change(e, () => e.Active = BackendHealth.Healthy, new StateReason.FirstProbePassed(r.Status), [.. e.ProbeRun]);
            else if (e.Active == BackendHealth.Unhealthy && e.PassedProbes >= hc.HealthyThreshold)
                Change(e, () => e.Active = BackendHealth.Healthy, new StateReason.ProbesPassed(e.PassedProbes, r.Status), [.. e.ProbeRun]);
        }
        else
        {
            e.FailedProbes++;
            e.PassedProbes = 0;
            if (e.Active != BackendHealth.Unhealthy && e.FailedProbes >= hc.UnhealthyThreshold)
                Change(e, () => e.Active = BackendHealth.Unhealthy, new StateReason.ProbesFailed(e.FailedProbes, r.Status, r.Error), [.. e.ProbeRun]);
        }
        Dispatch(); // a backend back up can take waiters
    }

    /// <summary>Returns the net change taken (for the journal).</summary>
    public int Apply(ConnectionsChanged c)
    {
        var delta = c.Backend.Connections.Take(); // always, even for a route that is gone: it re-arms the notification
        ApplyConnections(c.Backend.Id, delta);
        return delta;
    }

    public void ApplyConnections(int routeId, int delta)
    {
        if (delta == 0 || !_byId.TryGetValue(routeId, out var e)) return;
        e.OpenConnections += delta;
        if (_retired.TryGetValue(routeId, out var old)) old.OpenConnections += delta;
    }

    // Runs a mutation and reports the change if the visible state moved.
    void Change(BackendEntry e, Action mutate, StateReason why, Evidence[] evidence)
    {
        var before = e.State;
        var wasEligible = e.Eligible;
        mutate();
        if (e.Eligible && !wasEligible) StartWarming(e);
        if (e.State != before)
            Report(e, new StateChange(e.Route, e.State, why, NoneEligible: wasEligible && !e.Eligible && !AnyEligible()), before, evidence);
    }

    // The one way a change leaves the table: numbered, kept on the entry for /status and in the
    // ring for /events, then logged.
    void Report(BackendEntry e, StateChange change, BackendHealth from, Evidence[] evidence)
    {
        change = change with { Seq = ++_seq, At = _time.GetUtcNow(), From = from, Evidence = evidence };
        e.LastChange = change;
        Events.Add(change);
        _onChange(change);
    }

    // but: e is left out (it may not be in the index yet: a reload adds it after).
    bool AnyEligible(BackendEntry? but = null) => _index.Eligible - (but is { IndexedEligible: true } ? 1 : 0) > 0;

    // ---- reads ----------------------------------------------------------------------------

    public ProbePlan ProbePlan()
    {
        var targets = new List<BackendRoute>(_entries.Count);
        foreach (var e in _entries)
            if (!e.Draining) targets.Add(e.Route);
        return new ProbePlan(targets.ToArray(), _config.HealthCheck);
    }

    public StatusSnapshot Snapshot()
    {
        ExpireEjections();
        var now = _time.GetUtcNow();
        var list = new BackendStatus[_entries.Count];
        for (var i = 0; i < list.Length; i++)
        {
            var e = _entries[i];
            if (e.WarmingSince is not null) Warm(e, now);
            list[i] = new BackendStatus(e.Route.Url, e.Weight, e.State, e.InFlight, e.Requests, e.Failures, e.LastProbe,
                e.OpenConnections, e.LastChange, e.EjectedUntil)
            {
                EffectiveWeight = (double)e.EffectiveWeight / SlowStart.Scale,
                MaxInFlight = e.MaxInFlight,
                Address = e.Route.Address,
                Discovery = DiscoveryOf(e),
            };
        }
        return new StatusSnapshot(_config.Balancing, list, ConfigStatus) { QueueLength = _queue.Count };
    }
}
