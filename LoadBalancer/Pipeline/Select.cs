using System.Threading.Channels;

namespace LoadBalancer.Pipeline;

// Go's two-armed select for C#, which has none:
//
//     for { select { case e := <-events: ...; case r := <-requests: ... } }
//
// WaitAsync() completes when either channel has an item (or is closed). It keeps at most one
// WaitToReadAsync pending per channel and re-arms only the one that finished: a SingleReader
// channel allows just one outstanding wait, and starting a fresh wait each time would leak
// a waiter per loop. A closed channel's wait becomes a task that never completes (Go: a nil
// channel, which select never chooses). Unlike Go's select, which picks at random, the caller
// then drains both with TryRead in the order it chooses.
public sealed class Select<TA, TB>(ChannelReader<TA> a, ChannelReader<TB> b)
{
    static readonly Task<bool> Never = new TaskCompletionSource<bool>().Task;

    Task<bool>? _a, _b;

    /// <summary>True while either channel may still deliver. False once both are completed and empty.</summary>
    public async ValueTask<bool> WaitAsync()
    {
        _a ??= Arm(a);
        _b ??= Arm(b);
        if (_a == Never && _b == Never) return false;
        if (!_a.IsCompleted && !_b.IsCompleted) await Task.WhenAny(_a, _b).ConfigureAwait(false);
        // Re-arm only the finished wait; a false result means that channel is done for good.
        if (_a.IsCompleted) _a = await _a.ConfigureAwait(false) ? null : Never;
        if (_b.IsCompleted) _b = await _b.ConfigureAwait(false) ? null : Never;
        return _a != Never || _b != Never;
    }

    // Fast path: when an item is already there, WaitToReadAsync completes synchronously and
    // AsTask() allocates nothing (a cached completed task).
    static Task<bool> Arm<T>(ChannelReader<T> reader) => reader.WaitToReadAsync().AsTask();
}
