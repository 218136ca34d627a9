using System.Threading.Channels;

namespace LoadBalancer.Tests.Pipeline;

// Wraps a real channel's writer and reports every TryWrite attempt with its result, so a test can
// await "the stage tried to write" even when the write was dropped (a full DropWrite channel).
public sealed class ObservedWriter<T>(ChannelWriter<T> inner, Action<T, bool> onTryWrite) : ChannelWriter<T>
{
    public override bool TryWrite(T item)
    {
        var written = inner.TryWrite(item);
        onTryWrite(item, written);
        return written;
    }

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) =>
        inner.WaitToWriteAsync(cancellationToken);

    public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);
}
