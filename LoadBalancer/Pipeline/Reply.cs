using System.Threading.Tasks.Sources;

namespace LoadBalancer.Pipeline;

// A reply slot that is reused instead of allocated per ask: what TaskCompletionSource<T> is to a
// one-off question, for the question every request asks (which backend?). The asker awaits
// Task once; reading the result resets the slot and parks it in a per-thread cache for the next
// ask on that thread. Continuations always run asynchronously, so the asker never resumes on
// the state task's thread (the trap TaskCreationOptions.RunContinuationsAsynchronously avoids).
// Rules: the state task sets it exactly once; the asker awaits it exactly once (breaking the
// second rule throws InvalidOperationException and leaves the slot to its current owner).
public sealed class Reply<T> : IValueTaskSource<T>
{
    [ThreadStatic] static Reply<T>? t_cached;

    ManualResetValueTaskSourceCore<T> _core = new() { RunContinuationsAsynchronously = true };

    Reply() { }

    public static Reply<T> Rent()
    {
        var reply = t_cached;
        if (reply is null) return new Reply<T>();
        t_cached = null;
        return reply;
    }

    /// <summary>What the asker awaits (once).</summary>
    public ValueTask<T> Task => new(this, _core.Version);

    public void SetResult(T value) => _core.SetResult(value);
    public void SetException(Exception error) => _core.SetException(error);

    // Misuse (a second read, a read before the answer, an old ValueTask) throws to whoever did it
    // and leaves the slot alone: by then the slot may belong to the next ask on this thread, and
    // resetting it would wipe that ask's continuation, so its request would wait forever.
    // Only the one good read, current token and an answer present, resets and re-caches.
    T IValueTaskSource<T>.GetResult(short token)
    {
        ThrowIfStale(token);
        if (_core.GetStatus(token) == ValueTaskSourceStatus.Pending)
            throw new InvalidOperationException(
                "Reply: read before the state task answered (the reply has not been set); await the ValueTask instead of reading .Result.");
        try
        {
            return _core.GetResult(token);
        }
        finally
        {
            _core.Reset();
            t_cached = this;
        }
    }

    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token)
    {
        ThrowIfStale(token);
        return _core.GetStatus(token);
    }

    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ThrowIfStale(token);
        _core.OnCompleted(continuation, state, token, flags);
    }

    // The token is the slot's version when the ValueTask was made; every reset moves it on.
    // (It is a short, so a ValueTask kept through 65536 reuses would pass: the rule stays "once".)
    void ThrowIfStale(short token)
    {
        if (token != _core.Version)
            throw new InvalidOperationException(
                "Reply: awaited twice (stale token): this reply was already read and its slot reused; a ValueTask may be awaited only once.");
    }
}
