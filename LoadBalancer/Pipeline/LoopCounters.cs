using System.Collections.Immutable;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace LoadBalancer.Pipeline;

// What the state loop has done, counted by the loop itself: the messages it took from each
// channel, by kind, and the time it spent handling them (busy) rather than waiting for the next.
// The loop is the only writer (plain increments: no interlocked op, no contention on the hot
// path); the dashboard reads from any thread with Volatile.Read, where a value one turn old is
// fine and a torn one cannot happen (aligned 64-bit fields). Nothing here is backend state.
public sealed class LoopCounters
{
    long _probeResults, _outcomes, _cancels, _connections, _wakes, _configs, _memberships;
    long _picks, _probePlans, _statuses, _discoveryPlans;
    long _busyTicks, _turns;
    // Kinds this class does not name (a later issue's messages), counted by type name. A new kind
    // adds a box to a new immutable map (rare: once per kind); the loop alone writes the boxes.
    ImmutableDictionary<Type, StrongBox<long>> _others = ImmutableDictionary<Type, StrongBox<long>>.Empty;

    public void Count(StateEvent e)
    {
        switch (e)
        {
            case RequestOutcome: _outcomes++; break;
            case PickCancelled: _cancels++; break;
            case ProbeResult: _probeResults++; break;
            case ConnectionsChanged: _connections++; break;
            case Wake: _wakes++; break;
            case ConfigChanged or ConfigRejected: _configs++; break;
            case MembershipChanged: _memberships++; break;
            default: Other(e.GetType()); break;
        }
    }

    public void Count(StateRequest r)
    {
        switch (r)
        {
            case PickRequest: _picks++; break;
            case ProbePlanRequest: _probePlans++; break;
            case StatusRequest: _statuses++; break;
            case DiscoveryPlanRequest: _discoveryPlans++; break;
            default: Other(r.GetType()); break;
        }
    }

    void Other(Type type)
    {
        if (!_others.TryGetValue(type, out var box)) Volatile.Write(ref _others, _others.Add(type, box = new StrongBox<long>()));
        box.Value++;
    }

    IEnumerable<(string, string, long)> Others(Type kind)
    {
        foreach (var (type, box) in Volatile.Read(ref _others))
            if (type.IsSubclassOf(kind)) yield return (type.Name, "other", Volatile.Read(ref box.Value));
    }

    /// <summary>A turn of the loop that began at <paramref name="start"/> (Stopwatch.GetTimestamp) is done.</summary>
    public void Turn(long start)
    {
        _busyTicks += Stopwatch.GetTimestamp() - start;
        _turns++;
    }

    /// <summary>Seconds spent handling messages since startup (the rest of the time the loop waited).</summary>
    public double BusySeconds => (double)Volatile.Read(ref _busyTicks) / Stopwatch.Frequency;

    public long Turns => Volatile.Read(ref _turns);

    /// <summary>Taken from events, by kind, with the stage that sends each (the dashboard draws one
    /// arrow per sender); a kind not named here comes with its type name and sender "other".</summary>
    public (string Message, string From, long Count)[] Events() =>
    [
        ("ProbeResult", "HealthChecker", Volatile.Read(ref _probeResults)),
        ("RequestOutcome", "ProxyEndpoint", Volatile.Read(ref _outcomes)),
        ("PickCancelled", "ProxyEndpoint", Volatile.Read(ref _cancels)),
        ("ConnectionsChanged", "BackendPools", Volatile.Read(ref _connections)),
        ("ConfigChanged", "ConfigWatcher", Volatile.Read(ref _configs)),
        ("Wake", "BackendState", Volatile.Read(ref _wakes)),
        ("MembershipChanged", "DnsResolver", Volatile.Read(ref _memberships)),
        .. Others(typeof(StateEvent)),
    ];

    /// <summary>Taken from requests, by kind, with the caller that asks each.</summary>
    public (string Message, string From, long Count)[] Requests() =>
    [
        ("PickRequest", "ProxyEndpoint", Volatile.Read(ref _picks)),
        ("ProbePlanRequest", "HealthChecker", Volatile.Read(ref _probePlans)),
        ("StatusRequest", "AdminEndpoints", Volatile.Read(ref _statuses)),
        ("DiscoveryPlanRequest", "DnsResolver", Volatile.Read(ref _discoveryPlans)),
        .. Others(typeof(StateRequest)),
    ];
}
