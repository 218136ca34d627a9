using LoadBalancer.Balancing;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The checkpoint rule of BackendTable (see BackendTable.cs): the table as data (TableCheckpoint),
// taken when the journal starts a new file, and a table made from it for a replay of that file.
// At the checkpoint the random source is reseeded and the policy made afresh (its cursor back at
// the start), on the live table and the replayed one alike: so neither needs to be written down,
// only the new seed.
public sealed partial class BackendTable
{
    int _lastRoute; // the newest route id made: a replay from a checkpoint goes on from it
    readonly Queue<GoneRoute> _gone = new(); // the last GoneRoute.Kept routes the table let go

    void Gone(BackendRoute r)
    {
        if (_gone.Count == GoneRoute.Kept) _gone.Dequeue();
        _gone.Enqueue(new GoneRoute(r.Id, r.Url, r.Key, r.Address));
    }

    BackendRoute NewRoute(BackendConfig b, PoolConfig pool)
    {
        var route = _createRoute(b, pool);
        if (route.Id > _lastRoute) _lastRoute = route.Id;
        return route;
    }

    /// <summary>A new random source for the policies, and the policies made afresh with it.</summary>
    public void Reseed(int seed)
    {
        _random = new Random(seed);
        _policy = BalancingPolicies.Create(_config.Balancing, _random, _config.HashBalanceFactor);
    }

    /// <summary>The table as it is. pickOf: the journal's number of a queued pick.</summary>
    public TableCheckpoint Checkpoint(Func<PickRequest, long> pickOf)
    {
        var waiters = new List<WaiterCheckpoint>(_queue.Count);
        for (var node = _queue.First; node is not null; node = node.Next)
        {
            var w = node.Value;
            waiters.Add(new WaiterCheckpoint(pickOf(w.Request), w.Request.Exclude is { } x ? Array.ConvertAll(x, r => r.Id) : null,
                w.Request.Key.Hash, w.Request.Key.Affinity, w.Enqueued, w.Deadline, w.Id));
        }
        return new TableCheckpoint(
            _lastRoute, _seq, ConfigStatus.Generation, ConfigStatus.LoadedAt, ConfigStatus.LastError,
            _affinitySecret is null ? null : Convert.ToBase64String(_affinitySecret),
            [.. _entries.Select(e => new BackendCheckpoint(e.Route.Id, ConfigOf(e.Route), e.Pool, e.Weight, e.MaxInFlight, e.EffectiveWeight,
                e.WarmingSince, e.EjectionRefused, e.Active, e.PassedProbes, e.FailedProbes, e.LastProbe is { } p ? JournalEntry.Probed.Of(p) : null,
                e.ConsecutiveFailures, e.EjectedUntil, e.Draining, e.OperatorDrain, e.DrainReported, [.. e.ProbeRun], [.. e.FailureRun],
                e.InFlight, e.Requests, e.Failures, e.OpenConnections, e.CurrentWeight))],
            [.. _retired.Values.Select(r => new RetiredCheckpoint(r.Route.Id, r.Entry.Route.Id, ConfigOf(r.Route), r.InFlight, r.OpenConnections))],
            [.. _discovered.Select(d => new DiscoveredCheckpoint(d.Key, d.Value.Addresses, d.Value.Error))],
            [.. waiters], _queue.LastId, _budget.Now, _budget.Counted(), [.. _gone]);
    }

    // What a route was made from, as far as a table made from a checkpoint needs it.
    static BackendConfig ConfigOf(BackendRoute r) =>
        new(r.Url, r.Key, new Uri(r.Url), 1) { Protocol = r.Protocol, Tls = r.Tls, Address = r.Address };

    // The constructor's other half, for a table made from a checkpoint: the routes come from
    // createRoute in checkpoint order (backends, then retired ones), so a replay can give them their ids.
    void Restore(TableCheckpoint c)
    {
        _seq = c.Seq;
        ConfigStatus = new ConfigStatus(c.ConfigLoadedAt, c.Generation, c.ConfigError);
        _affinitySecret = c.AffinitySecret is null ? null : Convert.FromBase64String(c.AffinitySecret);
        foreach (var d in c.Discovered) _discovered[d.Backend] = new Discovered(d.Addresses, d.Error);
        foreach (var b in c.Backends)
        {
            var e = new BackendEntry(NewRoute(b.Backend, b.Pool ?? _config.Pool), b.Weight)
            {
                Pool = b.Pool, MaxInFlight = b.MaxInFlight, EffectiveWeight = b.EffectiveWeight, WarmingSince = b.WarmingSince,
                EjectionRefused = b.EjectionRefused, Active = b.Active, PassedProbes = b.PassedProbes, FailedProbes = b.FailedProbes,
                ConsecutiveFailures = b.ConsecutiveFailures, EjectedUntil = b.EjectedUntil, Draining = b.Draining,
                OperatorDrain = b.OperatorDrain, DrainReported = b.DrainReported, InFlight = b.InFlight, Requests = b.Requests,
                Failures = b.Failures, OpenConnections = b.OpenConnections, CurrentWeight = b.CurrentWeight,
            };
            if (b.LastProbe is { } p) e.LastProbe = new ProbeResult(e.Route, p.At, p.Status, TimeSpan.FromMilliseconds(p.LatencyMs), p.Error);
            e.ProbeRun.AddRange(b.ProbeRun);
            e.FailureRun.AddRange(b.FailureRun);
            e.AffinityToken = Token(e);
            if (e.AffinityToken is { } token) _byToken[token] = e;
            _byId.Add(e.Route.Id, e);
            _byIdentity[e.Route.Identity] = e;
            _entries.Add(e);
            if (e.EjectedUntil is { } until && until < _nextEjectionEnd) _nextEjectionEnd = until;
        }
        foreach (var r in c.Retired)
        {
            var entry = _byId[r.Backend];
            var old = new RetiredRoute(NewRoute(r.Config, entry.Pool ?? _config.Pool), entry) { InFlight = r.InFlight, OpenConnections = r.OpenConnections };
            _retired.Add(old.Route.Id, old);
            _byId.Add(old.Route.Id, entry);
        }
        _queue.LastId = c.LastWaiter;
        _budget.Restore(c.BudgetNow, c.BudgetSlots);
        _lastRoute = c.LastRoute;
        foreach (var g in c.Gone) _gone.Enqueue(g);
        _index.Rebuild(_entries);
    }

    /// <summary>A replay from a checkpoint: a pick that was waiting in the queue, in queue order.</summary>
    public Waiter RestoreWaiter(PickRequest p, DateTimeOffset enqueued, DateTimeOffset deadline, long id) =>
        _queue.Restore(p, enqueued, deadline, id);
}
