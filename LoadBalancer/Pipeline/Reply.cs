using System.Threading.Tasks.Sources;

namespace LoadBalancer.Pipeline;

// A reply slot that is reused instead of allocated per ask: what TaskCompletionSource<T> is to a
// one-off question, for the question every request asks (which backend?). The asker awaits
// Task once; reading the result resets the slot and parks it in a per-thread cache for the next
// ask on that thread. Continuations always run asynchronously, so the asker never resumes on
// the state task's thread (the trap TaskCreationOptions.RunContinuationsAsynchronously avoids).
// Rules: the state task sets it exactly once; the asker awaits it exactly once.
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

    T IValueTaskSource<T>.GetResult(short token)
    {
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

    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
