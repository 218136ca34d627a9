namespace LoadBalancer.Pipeline;

// The admission rules of BackendTable (see BackendTable.cs), issue 12. All of them are exact
// because one task makes every decision in order: the pick that takes a slot is the only place
// that counts one, and a freed slot is handed over in the same turn that frees it.
//   - limits: a backend at its maxInFlight is no candidate (Candidates, BackendTable.cs; BackendIndex);
//   - the queue: a pick that finds every eligible backend full waits, oldest first (AdmissionQueue);
//     every change that can free a slot ends in Dispatch, so no waiter ever waits for a slot that
//     is free, and a new pick never overtakes a waiter that could use its slot;
//   - the retry budget: a pick with a tried list is granted or refused here (RetryBudget);
//   - slow start: the effective weight of a backend that came back (SlowStart);
//   - maxEjectionPercent: passive ejection never takes out more than its share (MayEject).
public sealed partial class BackendTable
{
    readonly AdmissionQueue _queue = new();
    readonly RetryBudget _budget = new();
    DateTimeOffset _deniedLoggedAt = DateTimeOffset.MinValue;
    long _deniedSinceLog;

    /// <summary>Told of every pick's answer as it is given, now or from the queue (the journal records it).</summary>
    public Action<PickRequest, Pick>? Answered { get; set; }

    // The one place a pick is answered.
    void Reply(PickRequest p, Pick pick)
    {
        Answered?.Invoke(p, pick);
        p.Reply.SetResult(pick);
    }

    /// <summary>Picks waiting for a slot.</summary>
    public int QueueLength => _queue.Count;

    /// <summary>The retry budget's window (for tests and /explain).</summary>
    public RetryBudget RetryBudget => _budget;

    /// <summary>A handler's pick: answered now (a backend, or why not), or queued when every
    /// eligible backend is at its limit. Returns the waiter when queued, so that the state loop
    /// can watch its client's abort (PickCancelled); it is answered later, exactly once.</summary>
    public Waiter? Pick(PickRequest p)
    {
        var now = _time.GetUtcNow();
        ExpireEjections();
        if (_queue.Count > 0) Dispatch(now); // waiters first: a slot one of them can use is theirs
        var retry = p.Exclude is { Length: > 0 };
        if (!retry) _budget.FirstAttempt(now);
        var untried = Candidates(p.Exclude, now);
        try
        {
            if (untried == 0) return Answer(p, Refusal.NoBackend);
            if (retry && !Grant(now)) return Answer(p, Refusal.Budget);
            if (AnyCandidate)
            {
                Reply(p, Take(p.Exclude, key: p.Key));
                return null;
            }
        }
        finally
        {
            Unmark(p.Exclude);
        }
        if (_queue.Count >= _config.Admission.QueueSize)
        {
            _metrics?.QueueRejected(full: true);
            return Answer(p, Refusal.QueueFull);
        }
        if (p.Aborted.IsCancellationRequested) return Answer(p, Refusal.Cancelled);
        return _queue.Enqueue(p, now, _config.Admission.QueueTimeout);
    }

    Waiter? Answer(PickRequest p, Refusal why)
    {
        Reply(p, new Pick(null, Forwarding, why));
        return null;
    }

    /// <summary>A waiter's client left: it leaves the queue without a slot. Late (the waiter was
    /// answered first, and its handler will release the slot it got): nothing to do.</summary>
    public void Apply(PickCancelled c)
    {
        if (c.Waiter.Waiting) Leave(c.Waiter, Refusal.Cancelled, _time.GetUtcNow());
    }

    void Dispatch()
    {
        if (_queue.Count > 0) Dispatch(_time.GetUtcNow());
    }

    // Answers every waiter that can be answered now: the expired ones (queue timeout), then, while
    // a backend has a free slot, the oldest waiter that can use one. With no eligible backend left
    // at all, waiting is pointless: each gets NoBackend at once.
    void Dispatch(DateTimeOffset now)
    {
        while (_queue.Expired(now) is { } late) Leave(late, Refusal.QueueTimeout, now);
        while (_queue.First is not null)
        {
            var free = AnyFreeSlot(out var anyEligible);
            if (!free && anyEligible) return;
            Waiter? next = null;
            var pick = default(Pick);
            for (var node = _queue.First; node is not null && next is null;)
            {
                var w = node.Value;
                node = node.Next;
                if (w.Request.Aborted.IsCancellationRequested)
                {
                    Leave(w, Refusal.Cancelled, now);
                    continue;
                }
                var untried = Candidates(w.Request.Exclude, now);
                try
                {
                    if (untried == 0) Leave(w, Refusal.NoBackend, now);
                    else if (AnyCandidate) (next, pick) = (w, Take(w.Request.Exclude, now - w.Enqueued, w.Request.Key));
                }
                finally
                {
                    Unmark(w.Request.Exclude);
                }
            }
            if (next is null) return; // the free slots are on backends every waiter has tried
            _queue.Remove(next);
            _metrics?.QueueWait(pick.Waited);
            Reply(next.Request, pick);
        }
    }

    bool AnyFreeSlot(out bool anyEligible)
    {
        if (!ReferencePicks)
        {
            anyEligible = _index.Eligible > 0;
            return _index.Count > 0; // no pick is being made: no backend is marked tried
        }
        anyEligible = false;
        foreach (var e in _entries)
        {
            if (!e.Eligible) continue;
            anyEligible = true;
            if (e.HasSlot) return true;
        }
        return false;
    }

    void Leave(Waiter w, Refusal why, DateTimeOffset now)
    {
        _queue.Remove(w);
        var waited = now - w.Enqueued;
        _metrics?.QueueWait(waited);
        if (why == Refusal.QueueTimeout) _metrics?.QueueRejected(full: false);
        Reply(w.Request, new Pick(null, Forwarding, why, waited));
    }

    /// <summary>At stop, after the state loop's last message: no slot will ever free, so every
    /// waiter left is answered now (or given error, when the loop died of a bug).</summary>
    public void CloseQueue(Exception? error = null)
    {
        while (_queue.First?.Value is { } w)
        {
            _queue.Remove(w);
            if (error is null) Reply(w.Request, new Pick(null, Forwarding, Refusal.Stopping));
            else w.Request.Reply.SetException(error);
        }
    }

    // ---- the retry budget -----------------------------------------------------------------

    bool Grant(DateTimeOffset now)
    {
        var a = _config.Admission;
        if (_budget.TryGrant(now, a.RetryBudgetPercent, a.RetryBudgetMinPerSecond)) return true;
        _metrics?.RetryDenied();
        _deniedSinceLog++;
        if (now - _deniedLoggedAt >= TimeSpan.FromSeconds(1)) // at most one line a second
        {
            Log.RetriesDenied(_log, _deniedSinceLog, _budget.Granted, _budget.FirstAttempts, a.RetryBudgetPercent, a.RetryBudgetMinPerSecond);
            _deniedLoggedAt = now;
            _deniedSinceLog = 0;
        }
        return false;
    }

    // ---- slow start -----------------------------------------------------------------------

    // e just became eligible: it warms up, unless slow start is off, this is startup, or no other
    // backend is eligible (then it has to take everything anyway).
    void StartWarming(BackendEntry e)
    {
        var ramp = _config.Admission.SlowStart;
        if (ramp <= TimeSpan.Zero || !_started || !e.Eligible || !AnyEligible(but: e)) return;
        var now = _time.GetUtcNow();
        e.WarmingSince = now;
        e.EffectiveWeight = SlowStart.Weight(e.Weight, now, now, ramp);
        Log.SlowStartBegins(_log, e.Route.Url, Configuration.Durations.Format(ramp));
    }

    // The ramp, as a pure function of (since, now); over: full weight, no longer warming.
    void Warm(BackendEntry e, DateTimeOffset now)
    {
        var ramp = _config.Admission.SlowStart;
        var since = e.WarmingSince!.Value;
        if (ramp <= TimeSpan.Zero || SlowStart.Over(since, now, ramp))
        {
            e.WarmingSince = null;
            e.EffectiveWeight = e.Weight * SlowStart.Scale;
        }
        else
        {
            e.EffectiveWeight = SlowStart.Weight(e.Weight, since, now, ramp);
        }
    }

    // ---- maxEjectionPercent ---------------------------------------------------------------

    // Passive ejection of e would leave fewer than 100 - maxEjectionPercent percent of the
    // configured backends un-ejected: e stays in (logged once until it recovers or is ejected).
    // One backend may always be ejected.
    bool MayEject(BackendEntry e)
    {
        ExpireEjections();
        int total = _index.Configured, ejected = _index.Ejected;
        var percent = _config.PassiveHealth.MaxEjectionPercent;
        if (ejected == 0 || (long)(total - ejected - 1) * 100 >= (long)(100 - percent) * total) return true;
        if (!e.EjectionRefused)
        {
            e.EjectionRefused = true;
            Log.EjectionRefused(_log, e.Route.Url, e.ConsecutiveFailures, ejected, total, percent);
        }
        return false;
    }
}
