namespace LoadBalancer.Pipeline;

// The retry budget (issue 12): over the last 10 s, retries granted never exceed
// max(minPerSecond * 10, percent/100 * first attempts). A retry counts from the moment it is
// granted, not when its attempt starts (Envoy counts only retries in flight, so retries waiting
// out a backoff slip past its budget: envoy#30205). Plain state, owned by the state task.
//
// The window slides in 1 ms steps over a ring of 10 000 slots, one per millisecond: first attempts
// and grants are counted in the slot of their millisecond on the injected clock, and a slot
// leaves the window 10 s later. Memory is fixed (80 KB) whatever the request rate.
public sealed class RetryBudget
{
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(10);
    const int Slots = 10_000; // Window in ms

    readonly int[] _firsts = new int[Slots];
    readonly int[] _granted = new int[Slots];
    long _now = long.MinValue; // the newest millisecond counted
    long _firstsInWindow, _grantedInWindow;

    /// <summary>First attempts counted in the window that ends now.</summary>
    public long FirstAttempts => _firstsInWindow;

    /// <summary>Retries granted in the window that ends now.</summary>
    public long Granted => _grantedInWindow;

    /// <summary>A request's first attempt asked for a backend.</summary>
    public void FirstAttempt(DateTimeOffset now)
    {
        var slot = Advance(now);
        _firsts[slot]++;
        _firstsInWindow++;
    }

    /// <summary>Grants a retry (and counts it) when the window has room for one more.</summary>
    public bool TryGrant(DateTimeOffset now, int percent, int minPerSecond)
    {
        var slot = Advance(now);
        var allowed = Math.Max((long)minPerSecond * (long)Window.TotalSeconds, _firstsInWindow * percent / 100);
        if (_grantedInWindow >= allowed) return false;
        _granted[slot]++;
        _grantedInWindow++;
        return true;
    }

    /// <summary>The newest millisecond counted (a checkpoint's).</summary>
    public long Now => _now;

    /// <summary>The window's non-empty slots, as (slot, first attempts, grants) triples (a checkpoint's).</summary>
    public int[] Counted()
    {
        var list = new List<int>();
        for (var i = 0; i < Slots; i++)
            if (_firsts[i] != 0 || _granted[i] != 0) list.AddRange([i, _firsts[i], _granted[i]]);
        return [.. list];
    }

    /// <summary>The window as a checkpoint had it.</summary>
    public void Restore(long now, int[] slots)
    {
        Array.Clear(_firsts);
        Array.Clear(_granted);
        _firstsInWindow = _grantedInWindow = 0;
        for (var k = 0; k + 2 < slots.Length; k += 3)
        {
            _firsts[slots[k]] = slots[k + 1];
            _granted[slots[k]] = slots[k + 2];
            _firstsInWindow += slots[k + 1];
            _grantedInWindow += slots[k + 2];
        }
        _now = now;
    }

    // Moves the window's end to now: every millisecond that left the window (t - 10 s and before)
    // is subtracted and its slot reused. A clock that went back counts in the newest slot.
    int Advance(DateTimeOffset now)
    {
        var ms = now.ToUnixTimeMilliseconds();
        if (ms > _now)
        {
            if (_now == long.MinValue || ms - _now >= Slots)
            {
                Array.Clear(_firsts);
                Array.Clear(_granted);
                _firstsInWindow = _grantedInWindow = 0;
            }
            else
            {
                for (var t = _now + 1; t <= ms; t++)
                {
                    var i = (int)(t % Slots);
                    _firstsInWindow -= _firsts[i];
                    _grantedInWindow -= _granted[i];
                    _firsts[i] = _granted[i] = 0;
                }
            }
            _now = ms;
        }
        return (int)(_now % Slots);
    }
}
