using System.Runtime.InteropServices;
using LoadBalancer.Admin;
using LoadBalancer.Balancing;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The rules: thresholds, ejection, draining, picking. Plain synchronous code over plain fields,
// owned by BackendState and called only from its loop, so tests call it directly.
// Every state change is reported once through onChange (BackendState logs it).
// A backend is one BackendEntry for its whole life; its BackendRoute (the pool requests go
// through) is replaced when a reload changes pool.*, and the old one lives on, retired, until
// the requests still using it end. Messages name a route; _byId finds its entry either way.
public sealed class BackendTable
{
    readonly List<BackendEntry> _entries = [];
    readonly Dictionary<int, BackendEntry> _byId = [];       // route id -> entry, current and retired routes
    readonly Dictionary<int, RetiredRoute> _retired = [];   // route id -> a replaced route still in use
    readonly List<BackendEntry> _eligible = []; // scratch for Choose: no allocation per pick
    readonly Func<BackendConfig, PoolConfig, BackendRoute> _createRoute;
    readonly TimeProvider _time;
    readonly Action<StateChange> _onChange;
    readonly LbMetrics? _metrics;
    readonly Random? _random;

    LbConfig _config;
    IBalancingPolicy _policy;
    DateTimeOffset _nextEjectionEnd = DateTimeOffset.MaxValue;

    /// <summary>For a createRoute that ignores pool.* (tests): a pool change still replaces routes.</summary>
    public BackendTable(LbConfig config, Func<BackendConfig, BackendRoute> createRoute, TimeProvider time,
        Action<StateChange> onChange, LbMetrics? metrics = null, Random? random = null)
        : this(config, (backend, _) => createRoute(backend), time, onChange, metrics, random)
    {
    }

    public BackendTable(LbConfig config, Func<BackendConfig, PoolConfig, BackendRoute> createRoute, TimeProvider time,
        Action<StateChange> onChange, LbMetrics? metrics = null, Random? random = null)
    {
        _createRoute = createRoute;
        _time = time;
        _onChange = onChange;
        _metrics = metrics;
        _random = random;
        _config = config;
        _policy = BalancingPolicies.Create(config.Balancing, random);
        Forwarding = Settings(config);
        Reconcile(config);
        _started = true;
    }

    static ForwardingSettings Settings(LbConfig c) =>
        new(c.Retries, c.RequestTimeout, c.StreamIdleTimeout, c.TunnelIdleTimeout);

    bool _started; // the startup log line names the first backends; "added" is for reloads

    public LbConfig Config => _config;
    public ForwardingSettings Forwarding { get; private set; }
    public IReadOnlyList<BackendEntry> Entries => _entries;

    /// <summary>Replaces the policy (tests use this to inject a faulty one).</summary>
    public IBalancingPolicy Policy { get => _policy; set => _policy = value; }

    // ---- picks ----------------------------------------------------------------------------

    public Pick Choose(BackendRoute[]? exclude)
    {
        ExpireEjections();
        _eligible.Clear();
        foreach (var e in _entries)
            if (e.Eligible && (exclude is null || !Tried(exclude, e.Route.Key)))
                _eligible.Add(e);
        if (_eligible.Count == 0) return new Pick(null, Forwarding);

        var chosen = _policy.Choose(CollectionsMarshal.AsSpan(_eligible));
        chosen.InFlight++;
        _metrics?.InFlight(chosen.Route.Url, +1);
        if (exclude is { Length: > 0 }) _metrics?.Retry();
        return new Pick(chosen.Route, Forwarding);
    }

    // By Key, not by route: a pool reload may have given a tried backend a new route since.
    static bool Tried(BackendRoute[] tried, string key)
    {
        foreach (var r in tried)
            if (r.Key == key) return true;
        return false;
    }

    public void Apply(RequestOutcome o)
    {
        if (!_byId.TryGetValue(o.Backend.Id, out var e)) return;
        e.InFlight--;
        _metrics?.InFlight(e.Route.Url, -1);
        if (o.Kind.Side() is not (Side.Client or Side.Balancer)) // never counted: not the backend's doing
        {
            e.Requests++;
            if (o.Status > 0) _metrics?.Response(e.Route.Url, o.Status);
            else _metrics?.Failure(e.Route.Url, o.Kind.Describe());

            if (o.Kind.IsBackendFailure())
            {
                e.Failures++;
                e.ConsecutiveFailures++;
                if (e.ConsecutiveFailures >= _config.PassiveHealth.ConsecutiveFailures && e.State is not (BackendHealth.Ejected or BackendHealth.Draining))
                    Eject(e, o.Kind);
            }
            else
            {
                e.ConsecutiveFailures = 0;
            }
        }
        if (_retired.TryGetValue(o.Backend.Id, out var old) && --old.InFlight == 0) Dispose(old);
        if (e.Draining && e.InFlight == 0) Remove(e);
    }

    void Eject(BackendEntry e, Outcome last)
    {
        var until = _time.GetUtcNow() + _config.PassiveHealth.EjectFor;
        var lastEligible = e.Eligible && _entries.Count(x => x.Eligible) == 1;
        Change(e, () => e.EjectedUntil = until,
            $"{e.ConsecutiveFailures} failed requests in a row (last: {last.Describe()}); ejected for {Durations.Format(_config.PassiveHealth.EjectFor)}"
            + (lastEligible ? "; it was the last eligible backend: clients get 503 until one recovers" : ""));
        e.ConsecutiveFailures = 0;
        _metrics?.Ejection(e.Route.Url);
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
            if (until <= now) Change(e, () => e.EjectedUntil = null, "ejection ended");
            else if (until < _nextEjectionEnd) _nextEjectionEnd = until;
        }
    }

    /// <summary>Called by the state loop after each batch and when its ejection timer fires.</summary>
    public void Tick() => ExpireEjections();

    /// <summary>When the next ejection ends (MaxValue: none), so the state loop can set a timer
    /// and log the change on time even when no traffic comes.</summary>
    public DateTimeOffset NextEjectionEnd => _nextEjectionEnd;

    // ---- active health --------------------------------------------------------------------

    public void Apply(ProbeResult r)
    {
        if (!_byId.TryGetValue(r.Backend.Id, out var e) || e.Draining) return;
        e.LastProbe = r;
        _metrics?.Probe(e.Route.Url, r.Latency);
        var hc = _config.HealthCheck;
        if (r.Passed)
        {
            e.PassedProbes++;
            e.FailedProbes = 0;
            if (e.Active == BackendHealth.Unknown)
                Change(e, () => e.Active = BackendHealth.Healthy, $"probe passed: {r.Status}");
            else if (e.Active == BackendHealth.Unhealthy && e.PassedProbes >= hc.HealthyThreshold)
                Change(e, () => e.Active = BackendHealth.Healthy, $"{e.PassedProbes} passed probes: {r.Status}");
        }
        else
        {
            e.FailedProbes++;
            e.PassedProbes = 0;
            if (e.Active != BackendHealth.Unhealthy && e.FailedProbes >= hc.UnhealthyThreshold)
                Change(e, () => e.Active = BackendHealth.Unhealthy,
                    $"{e.FailedProbes} failed probes: {r.Error ?? $"status {r.Status}"}");
        }
    }

    public void Apply(ConnectionsChanged c)
    {
        var delta = c.Backend.Connections.Take(); // always, even for a route that is gone: it re-arms the notification
        if (delta == 0 || !_byId.TryGetValue(c.Backend.Id, out var e)) return;
        e.OpenConnections += delta;
        if (_retired.TryGetValue(c.Backend.Id, out var old)) old.OpenConnections += delta;
        _metrics?.Connections(e.Route.Url, delta);
    }

    // ---- configuration --------------------------------------------------------------------

    /// <summary>Applies a new configuration: backends that stay keep their state and counters,
    /// new ones start unknown, removed ones drain and are disposed when their last request ends.
    /// Changed pool settings give every backend in the new configuration a new route (ReplaceRoute).
    /// Returns what changed, in words (ConfigDiff), for the reload's log line.</summary>
    public string Reconcile(LbConfig config)
    {
        var changes = ConfigDiff.Describe(_config, config);
        if (config.Balancing != _config.Balancing) _policy = BalancingPolicies.Create(config.Balancing, _random);
        _config = config;
        if (Settings(config) is var settings && settings != Forwarding) Forwarding = settings;

        var wanted = config.Backends.ToDictionary(b => b.Key);
        foreach (var e in _entries.ToArray())
        {
            if (wanted.ContainsKey(e.Route.Key) || e.Draining) continue;
            Change(e, () => e.Draining = true, $"removed from the configuration; {e.InFlight} requests in flight");
            if (e.InFlight == 0) Remove(e);
        }

        var ordered = new List<BackendEntry>(config.Backends.Count);
        foreach (var b in config.Backends)
        {
            var e = _entries.Find(x => x.Route.Key == b.Key);
            if (e is null)
            {
                e = new BackendEntry(_createRoute(b, config.Pool), b.Weight) { Pool = config.Pool };
                _byId.Add(e.Route.Id, e);
                _metrics?.Eligible(e.Route.Url, +1);
                _metrics?.Touch(e.Route.Url);
                if (_started) _onChange(new StateChange(e.Route, e.State, "added"));
            }
            else if (e.Draining)
            {
                Change(e, () => e.Draining = false, "back in the configuration");
            }
            if (e.Pool != config.Pool) ReplaceRoute(e, b, config.Pool);
            e.Weight = b.Weight;
            ordered.Add(e);
        }
        ordered.AddRange(_entries.Where(e => e.Draining)); // still finishing requests
        _entries.Clear();
        _entries.AddRange(ordered);
        return changes;
    }

    // A SocketsHttpHandler's settings are fixed once it has sent, so new pool settings need a new
    // route. The entry stays: health, counters, in-flight and weight carry over. Requests in
    // flight keep the old route until they end; their outcomes and connection notes name the old
    // route's id, which still finds this entry, and the last outcome disposes the old pool.
    void ReplaceRoute(BackendEntry e, BackendConfig b, PoolConfig pool)
    {
        // What the old route carries: the entry's totals, less what earlier retired routes still hold.
        var old = new RetiredRoute(e.Route, e) { InFlight = e.InFlight, OpenConnections = e.OpenConnections };
        foreach (var r in _retired.Values)
        {
            if (r.Entry != e) continue;
            old.InFlight -= r.InFlight;
            old.OpenConnections -= r.OpenConnections;
        }
        e.Route = _createRoute(b with { Url = old.Route.Url }, pool); // the label in /status and /metrics stays
        e.Pool = pool;
        _byId.Add(e.Route.Id, e);
        if (old.InFlight == 0) Dispose(old);
        else _retired.Add(old.Route.Id, old);
    }

    void Dispose(RetiredRoute old)
    {
        _retired.Remove(old.Route.Id);
        _byId.Remove(old.Route.Id);
        // Its connections close with its pool; their close notes come after the route has left
        // _byId and are ignored, so they are counted closed here.
        old.Entry.OpenConnections -= old.OpenConnections;
        if (old.OpenConnections != 0) _metrics?.Connections(old.Entry.Route.Url, -old.OpenConnections);
        old.Route.Dispose();
    }

    /// <summary>At stop, after the state loop's last message: closes every backend's connection
    /// pool, draining ones included (a removed backend's was closed when it drained).</summary>
    public void DisposeRoutes()
    {
        foreach (var e in _entries) e.Route.Dispose();
        foreach (var r in _retired.Values) r.Route.Dispose(); // old pools still finishing requests
    }

    // Only at InFlight 0, so no retired route of e is left: each was disposed when its own last
    // request ended (e.InFlight counts theirs too).
    void Remove(BackendEntry e)
    {
        _entries.Remove(e);
        _byId.Remove(e.Route.Id);
        if (e.OpenConnections != 0) _metrics?.Connections(e.Route.Url, -e.OpenConnections);
        e.Route.Dispose();
        _onChange(new StateChange(e.Route, BackendHealth.Draining, "drained; its connection pool is closed", Removed: true));
    }

    // Runs a mutation and reports the change if the visible state moved.
    void Change(BackendEntry e, Action mutate, string reason)
    {
        var before = e.State;
        var wasEligible = e.Eligible;
        mutate();
        if (e.Eligible != wasEligible) _metrics?.Eligible(e.Route.Url, e.Eligible ? +1 : -1);
        if (e.State != before)
            _onChange(new StateChange(e.Route, e.State, reason, NoneEligible: wasEligible && !e.Eligible && !AnyEligible()));
    }

    bool AnyEligible()
    {
        foreach (var x in _entries)
            if (x.Eligible) return true;
        return false;
    }

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
        var list = new BackendStatus[_entries.Count];
        for (var i = 0; i < list.Length; i++)
        {
            var e = _entries[i];
            list[i] = new BackendStatus(e.Route.Url, e.Weight, e.State, e.InFlight, e.Requests, e.Failures, e.LastProbe, e.OpenConnections);
        }
        return new StatusSnapshot(_config.Balancing, list);
    }
}
