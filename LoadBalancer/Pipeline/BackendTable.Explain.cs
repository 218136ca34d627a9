using System.Runtime.InteropServices;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The dry run of BackendTable (see BackendTable.cs), for GET /explain: which backend the next pick
// would choose and why, and why each backend is or is not a candidate. It takes no slot, moves no
// cursor or running weight, and draws from its own Random, never the live (journaled) one.
public sealed partial class BackendTable
{
    readonly Random _dryRun = new();

    public Explanation Explain()
    {
        ExpireEjections(); // as a pick would: an ejection that is over is over (a real change, journaled with this message)
        var untried = ScanCandidates(null, _time.GetUtcNow()); // eligible and under their limit, warmed to now, as a pick sees them
        var candidates = new ExplainedCandidate[_entries.Count];
        for (var i = 0; i < candidates.Length; i++)
        {
            var e = _entries[i];
            candidates[i] = new ExplainedCandidate(e.Route.Url, e.State, e.Eligible, Why(e), e.Weight,
                e.EffectiveWeight / (double)SlowStart.Scale, e.InFlight, e.MaxInFlight);
        }
        if (untried == 0)
            return new Explanation(_config.Balancing, null, "no eligible backend: a request now gets 503 no healthy backends", candidates);
        if (_eligible.Count == 0)
            return new Explanation(_config.Balancing, null,
                $"every eligible backend is at its maxInFlight: a request now waits in the queue ({_queue.Count} waiting, queue.size {_config.Admission.QueueSize})", candidates);
        var choice = _policy.Explain(CollectionsMarshal.AsSpan(_eligible), _dryRun);
        _eligible.Clear();
        return new Explanation(_config.Balancing, choice.Chosen?.Route.Url, choice.Rule, candidates);
    }

    // In words, why e is or is not a candidate now.
    string Why(BackendEntry e)
    {
        var last = e.LastChange is { } c ? $" (since {Durations.Clock(c.At)}: {c.Reason})" : "";
        return e.State switch
        {
            BackendHealth.Draining when e.Draining => $"not eligible: removed from the configuration, draining {e.InFlight} requests in flight",
            BackendHealth.Draining => $"not eligible: drained by the operator, {e.InFlight} requests in flight; POST /backends/undrain puts it back",
            BackendHealth.Ejected => $"not eligible: ejected until {Durations.Clock(e.EjectedUntil!.Value)} after {Failed(e)}",
            BackendHealth.Unhealthy => $"not eligible: unhealthy, {e.PassedProbes} of {_config.HealthCheck.HealthyThreshold} passed probes needed to come back{last}",
            BackendHealth.Unknown => "eligible: unknown, no probe has passed or failed enough yet; it takes traffic until probes say otherwise",
            _ => $"eligible: healthy{last}",
        } + (e.Eligible && !e.HasSlot ? $"; at its limit (maxInFlight {e.MaxInFlight}): no new request until one ends" : "")
          + (e.Eligible && e.WarmingSince is not null ? $"; warming up (slowStart): effective weight {e.EffectiveWeight / (double)SlowStart.Scale:0.###} of {e.Weight}" : "");
    }

    static string Failed(BackendEntry e) => e.LastChange?.Why is StateReason.Ejected j
        ? $"{j.Failures} failed requests ({j.Last.Describe()})"
        : "failed requests";
}

/// <summary>GET /explain's answer: the policy, the backend it would choose (null: none eligible), its rule in words, every backend.</summary>
public sealed record Explanation(string Policy, string? Chosen, string Rule, ExplainedCandidate[] Candidates);

/// <summary>One backend in /explain. EffectiveWeight: the weight the policy uses now (less while slow start ramps it up); MaxInFlight 0: no limit.</summary>
public sealed record ExplainedCandidate(string Url, BackendHealth State, bool Eligible, string Reason, int Weight, double EffectiveWeight, int InFlight, int MaxInFlight);
