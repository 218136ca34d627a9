using System.Threading.Channels;

namespace LoadBalancer.Tests.Pipeline;

// Wraps a real channel's reader: reports every TryRead with its result and counts
// WaitToReadAsync calls that are still pending (a SingleReader channel allows one at a time).
public sealed class ObservedReader<T>(ChannelReader<T> inner, Action<bool, T?>? onTryRead = null) : ChannelReader<T>
{
    int _pendingWaits;
    int _maxPendingWaits;

    public int WaitCalls { get; private set; }
    public int PendingWaits => Volatile.Read(ref _pendingWaits);
    public int MaxPendingWaits => Volatile.Read(ref _maxPendingWaits);

    public override Task Completion => inner.Completion;
    public override bool CanCount => inner.CanCount;
    public override int Count => inner.Count;

    public override bool TryRead(out T item)
    {
        var read = inner.TryRead(out item!);
        onTryRead?.Invoke(read, read ? item : default);
        return read;
    }

    public override bool TryPeek(out T item) => inner.TryPeek(out item!);

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        WaitCalls++;
        var wait = inner.WaitToReadAsync(cancellationToken);
        if (wait.IsCompleted) return wait;
        var pending = Interlocked.Increment(ref _pendingWaits);
        InterlockedMax(ref _maxPendingWaits, pending);
        return new ValueTask<bool>(Track(wait.AsTask()));
    }

    async Task<bool> Track(Task<bool> wait)
    {
        try { return await wait.ConfigureAwait(false); }
        finally { Interlocked.Decrement(ref _pendingWaits); }
    }

    static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }
}
