using System.Threading.Channels;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Pipeline;

// Go's two-armed select over SingleReader channels, as the state task uses it.
public sealed class SelectTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    readonly Channel<int> _a = Channel.CreateBounded<int>(new BoundedChannelOptions(16) { SingleReader = true });
    readonly Channel<string> _b = Channel.CreateBounded<string>(new BoundedChannelOptions(16) { SingleReader = true });
    readonly ObservedReader<int> _aReader;
    readonly ObservedReader<string> _bReader;
    readonly Select<int, string> _select;

    public SelectTests()
    {
        _aReader = new ObservedReader<int>(_a.Reader);
        _bReader = new ObservedReader<string>(_b.Reader);
        _select = new Select<int, string>(_aReader, _bReader);
    }

    [Fact]
    public async Task WaitAsync_NothingToRead_WaitsUntilTheSecondChannelGetsAnItem()
    {
        var wait = _select.WaitAsync().AsTask();
        Assert.False(wait.IsCompleted);

        _b.Writer.TryWrite("request");

        Assert.True(await wait.WaitAsync(Deadline));
        Assert.True(_b.Reader.TryRead(out var item));
        Assert.Equal("request", item);
    }

    [Fact]
    public async Task WaitAsync_NothingToRead_WaitsUntilTheFirstChannelGetsAnItem()
    {
        var wait = _select.WaitAsync().AsTask();
        Assert.False(wait.IsCompleted);

        _a.Writer.TryWrite(7);

        Assert.True(await wait.WaitAsync(Deadline));
        Assert.True(_a.Reader.TryRead(out var item));
        Assert.Equal(7, item);
    }

    [Fact]
    public async Task WaitAsync_AlternatingChannels_WakesForEach()
    {
        for (var i = 0; i < 5; i++)
        {
            var wait = _select.WaitAsync().AsTask();
            Assert.False(wait.IsCompleted);
            if (i % 2 == 0) _a.Writer.TryWrite(i);
            else _b.Writer.TryWrite(i.ToString());
            Assert.True(await wait.WaitAsync(Deadline));
            Assert.True(i % 2 == 0 ? _a.Reader.TryRead(out _) : _b.Reader.TryRead(out _));
        }
    }

    [Fact]
    public async Task WaitAsync_OneChannelCompleted_KeepsWaitingForTheOther()
    {
        _a.Writer.Complete();
        await _select.WaitAsync().AsTask().WaitAsync(Deadline); // the close itself may wake it once

        var wait = _select.WaitAsync().AsTask();
        Assert.False(wait.IsCompleted); // a closed channel is never chosen again (Go: a nil channel)
        _b.Writer.TryWrite("late");

        Assert.True(await wait.WaitAsync(Deadline));
        Assert.True(_b.Reader.TryRead(out _));
    }

    [Fact]
    public async Task WaitAsync_BothCompletedButItemsLeft_TrueUntilDrained()
    {
        _a.Writer.TryWrite(1);
        _b.Writer.TryWrite("x");
        _a.Writer.Complete();
        _b.Writer.Complete();

        Assert.True(await _select.WaitAsync().AsTask().WaitAsync(Deadline));
        Assert.True(await _select.WaitAsync().AsTask().WaitAsync(Deadline)); // not drained yet: still true
        Assert.True(_a.Reader.TryRead(out _));
        Assert.True(await _select.WaitAsync().AsTask().WaitAsync(Deadline)); // b still holds one
        Assert.True(_b.Reader.TryRead(out _));

        Assert.False(await _select.WaitAsync().AsTask().WaitAsync(Deadline));
        Assert.False(await _select.WaitAsync().AsTask().WaitAsync(Deadline)); // and stays false
    }

    [Fact]
    public async Task WaitAsync_CompletedOneAfterTheOther_FalseOnlyAfterBoth()
    {
        var wait = _select.WaitAsync().AsTask();
        _b.Writer.Complete();
        Assert.True(await wait.WaitAsync(Deadline)); // a may still deliver

        wait = _select.WaitAsync().AsTask();
        Assert.False(wait.IsCompleted);
        _a.Writer.Complete();

        Assert.False(await wait.WaitAsync(Deadline));
    }

    [Fact]
    public async Task WaitAsync_ManyWakesFromOneChannel_KeepsOneWaitOnTheOther()
    {
        for (var i = 0; i < 20; i++)
        {
            var wait = _select.WaitAsync().AsTask();
            _b.Writer.TryWrite($"request {i}");
            Assert.True(await wait.WaitAsync(Deadline));
            while (_b.Reader.TryRead(out _)) { }
        }

        // a's first wait is still the one pending: never re-armed, never a second one.
        Assert.Equal(1, _aReader.WaitCalls);
        Assert.Equal(1, _aReader.PendingWaits);
        Assert.Equal(1, _aReader.MaxPendingWaits);
        Assert.Equal(1, _bReader.MaxPendingWaits);
        Assert.Equal(20, _bReader.WaitCalls); // b's is re-armed once per wake

        var last = _select.WaitAsync().AsTask();
        _a.Writer.TryWrite(1);
        Assert.True(await last.WaitAsync(Deadline)); // and that old wait still works
        Assert.True(_a.Reader.TryRead(out _));
    }

    [Fact]
    public async Task WaitAsync_RealSingleReaderUnboundedChannels_NoWaitIsCancelled()
    {
        // Unbounded + SingleReader is the single-consumer channel, which allows only one waiter.
        var a = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
        var b = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
        var select = new Select<int, int>(a.Reader, b.Reader);

        for (var i = 0; i < 10; i++)
        {
            var wait = select.WaitAsync().AsTask();
            (i % 3 == 0 ? a : b).Writer.TryWrite(i);
            Assert.True(await wait.WaitAsync(Deadline));
            while (a.Reader.TryRead(out _) || b.Reader.TryRead(out _)) { }
        }
        a.Writer.Complete();
        b.Writer.Complete();

        // Each close may wake it once ("true: either may still deliver"); then it is over.
        var wakes = 0;
        while (await select.WaitAsync().AsTask().WaitAsync(Deadline)) Assert.True(++wakes <= 2);
    }
}
