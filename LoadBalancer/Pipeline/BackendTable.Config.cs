using LoadBalancer.Balancing;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The configuration rule of BackendTable: a new lb.json reconciled with the backends there are
// (they keep their state; new ones start unknown; removed ones drain), and a rejected one kept
// for /status. Split from BackendTable.cs by rule, like the other partial files.
public sealed partial class BackendTable
{
    /// <summary>Applies a new configuration: backends that stay keep their state and counters,
    /// new ones start unknown, removed ones drain and are disposed when their last request ends.
    /// Changed pool settings give every backend in the new configuration a new route (ReplaceRoute).
    /// Returns what changed, in words (ConfigDiff), for the reload's log line.</summary>
    public string Reconcile(LbConfig config)
    {
        var changes = ConfigDiff.Describe(_config, config);
        _gaugesChanged = true;
        if (config.Balancing != _config.Balancing || config.HashBalanceFactor != _config.HashBalanceFactor)
            _policy = BalancingPolicies.Create(config.Balancing, _random, config.HashBalanceFactor);
        if (config.Admission.QueueTimeout < _config.Admission.QueueTimeout) _queue.Shorten(config.Admission.QueueTimeout);
        var affinityChanged = config.Affinity?.Secret != _config.Affinity?.Secret || config.Affinity is null != _config.Affinity is null;
        _config = config;
        if (Settings(config) is var settings && settings != Forwarding) Forwarding = settings;

        if (affinityChanged || !_started) SetAffinityTokens();
        ForgetDiscovered(config);
        SetBackends(Expand(config.Backends), [new Evidence(Evidence.Config, _time.GetUtcNow(), $"configuration {ConfigStatus.Generation + 1} applied")]);
        ConfigStatus = new ConfigStatus(_time.GetUtcNow(), ConfigStatus.Generation + 1, LastError: null);
        if (_started) _metrics?.ConfigReload(applied: true);
        Dispatch(); // a raised limit, an added backend: waiters may go now
        return changes;
    }

    // Makes the backends exactly these (a reload, or discovery's new addresses), by identity:
    // those that stay keep their state and counters, new ones start unknown, the others drain.
    void SetBackends(List<BackendConfig> backends, Evidence[] why)
    {
        var config = _config;
        var wanted = backends.Select(b => b.Identity).ToHashSet();
        var configured = config.Backends.Select(b => b.Key).ToHashSet();
        foreach (var e in _entries.ToArray())
        {
            if (wanted.Contains(e.Route.Identity) || e.Draining) continue;
            Change(e, () => e.Draining = true, configured.Contains(e.Route.Key) && e.Route.Address is { } gone
                ? new StateReason.VanishedFromDns(gone, e.InFlight)
                : new StateReason.RemovedFromConfig(e.InFlight), why);
            if (e.InFlight == 0) Remove(e);
        }

        var ordered = new List<BackendEntry>(backends.Count);
        foreach (var b in backends)
        {
            var e = _byIdentity.GetValueOrDefault(b.Identity);
            if (e is null)
            {
                e = new BackendEntry(NewRoute(b, config.Pool), b.Weight) { Pool = config.Pool };
                _byId.Add(e.Route.Id, e);
                _byIdentity[e.Route.Identity] = e;
                e.AffinityToken = Token(e);
                if (_started)
                {
                    Report(e, new StateChange(e.Route, e.State, b.Address is { } address ? new StateReason.Discovered(address) : new StateReason.Added()), e.State, why);
                    StartWarming(e);
                }
            }
            else if (e.Draining)
            {
                Change(e, () => e.Draining = false, new StateReason.BackInConfig(), why);
            }
            if (e.Pool != config.Pool || e.Route.Protocol != b.Protocol || e.Route.Tls != b.Tls) ReplaceRoute(e, b, config.Pool);
            if (e.Weight != b.Weight) e.Weight = b.Weight;
            e.MaxInFlight = b.MaxInFlight ?? config.Admission.MaxInFlightPerBackend;
            ordered.Add(e);
        }
        ordered.AddRange(_entries.Where(e => e.Draining)); // still finishing requests
        _entries.Clear();
        _entries.AddRange(ordered);
        _index.Rebuild(_entries);
        IndexTokens();
        _gaugesChanged = true;
    }

    /// <summary>A changed lb.json was rejected: the running configuration stays, /status says why
    /// until a later file applies (what nginx -t and HAProxy users expect: the current problem).</summary>
    public void Reject(string problem)
    {
        ConfigStatus = ConfigStatus with { LastError = problem };
        _metrics?.ConfigReload(applied: false);
    }

    // Only at InFlight 0, so no retired route of e is left: each was disposed when its own last
    // request ended (e.InFlight counts theirs too).
    void Remove(BackendEntry e)
    {
        _entries.Remove(e);
        _index.Remove(e);
        _byId.Remove(e.Route.Id);
        Gone(e.Route);
        if (_byIdentity.GetValueOrDefault(e.Route.Identity) == e) _byIdentity.Remove(e.Route.Identity);
        if (e.AffinityToken is { } token) _byToken.Remove(token);
        _gaugesChanged = true; // its series leave /metrics with the next snapshot
        e.Route.Dispose();
        Report(e, new StateChange(e.Route, BackendHealth.Draining, new StateReason.Drained(), Removed: true), BackendHealth.Draining,
            [new Evidence(Evidence.Request, _time.GetUtcNow(), "no request left in flight")]);
    }
}
