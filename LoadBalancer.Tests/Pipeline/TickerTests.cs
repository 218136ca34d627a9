using System.Threading.Channels;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The ticker over the real 1-slot ticks channel, its clock a FakeTimeProvider. The writer is
// observed so a test can await each write attempt, dropped ones included, instead of guessing
// timing. (A DropWrite channel's TryWrite returns true even when it drops the item, so only
// what the reader gets tells a kept tick from a dropped one.)
public sealed class TickerTests : IDisposable
{
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    readonly FakeTimeProvider _time = new();
    readonly PipelineChannels _channels = new();
    readonly Channel<Tick> _attempts = Channel.CreateUnbounded<Tick>();
    readonly Channel<TimeSpan> _periodsRead = Channel.CreateUnbounded<TimeSpan>();
    readonly Channel<bool> _periodsDrained = Channel.CreateUnbounded<bool>();
    readonly Ticker _ticker;
    readonly DateTimeOffset _start;

    public TickerTests()
    {
        _start = _time.GetUtcNow();
        var ticks = new ObservedWriter<Tick>(_channels.Ticks.Writer, (t, _) => _attempts.Writer.TryWrite(t));
        var periods = new ObservedReader<TimeSpan>(_channels.Periods.Reader, (read, period) =>
        {
            if (read) _periodsRead.Writer.TryWrite(period);
            else _periodsDrained.Writer.TryWrite(true);
        });
        _ticker = new Ticker(ticks, periods, Interval, _time);
    }

    public void Dispose() => _ticker.Dispose();

    ChannelReader<Tick> Ticks => _channels.Ticks.Reader;

    Task<Tick> NextAttemptAsync() => _attempts.Reader.ReadAsync().AsTask().WaitAsync(Deadline);

    Task<Tick> ReadTickAsync() => Ticks.ReadAsync().AsTask().WaitAsync(Deadline);

    [Fact]
    public async Task StartAsync_Started_WritesOneTickAtOnce()
    {
        await _ticker.StartAsync(CancellationToken.None);

        var first = await ReadTickAsync();
        Assert.Equal(_start, first.At);

        _time.Advance(Interval - TimeSpan.FromMilliseconds(1));
        Assert.False(Ticks.TryRead(out _));
        Assert.True(_attempts.Reader.TryRead(out var attempt));
        Assert.Equal(_start, attempt.At);
        Assert.False(_attempts.Reader.TryRead(out _)); // no second tick before the interval
    }

    [Fact]
    public async Task Advance_OneInterval_WritesAnotherTick()
    {
        await _ticker.StartAsync(CancellationToken.None);
        await ReadTickAsync();

        _time.Advance(Interval);
        var second = await ReadTickAsync();

        Assert.Equal(_start + Interval, second.At);
        _time.Advance(Interval);
        Assert.Equal(_start + 2 * Interval, (await ReadTickAsync()).At);
    }

    [Fact]
    public async Task Advance_SeveralIntervalsNobodyReads_KeepsOnlyTheFirstTick()
    {
        await _ticker.StartAsync(CancellationToken.None);
        Assert.Equal(_start, (await NextAttemptAsync()).At);

        // Each interval the ticker writes a tick; the one slot is full, so each is dropped.
        for (var i = 1; i <= 3; i++)
        {
            _time.Advance(Interval);
            Assert.Equal(_start + i * Interval, (await NextAttemptAsync()).At);
        }

        Assert.True(Ticks.TryRead(out var only));
        Assert.Equal(_start, only.At); // the oldest stays; later ticks were missed, not queued
        Assert.False(Ticks.TryRead(out _));
    }

    [Fact]
    public async Task Advance_AfterTheReaderCatchesUp_WritesAgain()
    {
        await _ticker.StartAsync(CancellationToken.None);
        await NextAttemptAsync();
        _time.Advance(Interval);
        await NextAttemptAsync(); // dropped: the start tick still fills the slot

        Assert.Equal(_start, (await ReadTickAsync()).At); // a slow reader finally takes the stale tick
        _time.Advance(Interval);

        var fresh = await ReadTickAsync();
        Assert.Equal(_start + 2 * Interval, fresh.At);
    }

    [Fact]
    public async Task Periods_NewPeriodWritten_NextTicksUseIt()
    {
        var shorter = TimeSpan.FromSeconds(2);
        await _ticker.StartAsync(CancellationToken.None);
        await ReadTickAsync();

        Assert.True(_channels.Periods.Writer.TryWrite(shorter));
        _time.Advance(Interval); // the old period still decides this tick
        Assert.Equal(_start + Interval, (await ReadTickAsync()).At);
        Assert.Equal(shorter, await _periodsRead.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
        await _periodsDrained.Reader.ReadAsync().AsTask().WaitAsync(Deadline); // applied: the loop is waiting again

        _time.Advance(shorter);
        Assert.Equal(_start + Interval + shorter, (await ReadTickAsync()).At);
        _time.Advance(shorter);
        Assert.Equal(_start + Interval + 2 * shorter, (await ReadTickAsync()).At);
    }

    [Fact]
    public async Task StartAfter_NotYetFired_NoTickEvenWhenTheTickerStops()
    {
        // The host's ApplicationStarted never fires when a listener cannot bind: no probe may run.
        var clock = new TimerCreations(_time);
        using var started = new CancellationTokenSource();
        using var ticker = new Ticker(new ObservedWriter<Tick>(_channels.Ticks.Writer, (t, _) => _attempts.Writer.TryWrite(t)),
            _channels.Periods.Reader, Interval, clock, started.Token);
        await ticker.StartAsync(CancellationToken.None);
        await clock.Created.WaitAsync(Deadline); // the loop runs: its timer exists

        _time.Advance(Interval);
        await ticker.StopAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.Equal(TaskStatus.RanToCompletion, ticker.ExecuteTask!.Status);
        Assert.False(_attempts.Reader.TryRead(out var tick), $"a tick was written at {tick.At}");
        await Ticks.Completion.WaitAsync(Deadline);
    }

    [Fact]
    public async Task StartAfter_Fires_FirstTickThenAndTheNextAnIntervalAfterTheStart()
    {
        var clock = new TimerCreations(_time);
        using var started = new CancellationTokenSource();
        using var ticker = new Ticker(_channels.Ticks.Writer, _channels.Periods.Reader, Interval, clock, started.Token);
        await ticker.StartAsync(CancellationToken.None);
        await clock.Created.WaitAsync(Deadline);
        var early = Ticks.TryRead(out _);

        var bound = TimeSpan.FromMilliseconds(30); // the listeners take a moment to bind
        _time.Advance(bound);
        await started.CancelAsync();

        Assert.False(early, "a tick before the start");
        Assert.Equal(_start + bound, (await ReadTickAsync()).At);
        _time.Advance(Interval - bound);
        Assert.Equal(_start + Interval, (await ReadTickAsync()).At);
        await ticker.StopAsync(CancellationToken.None).WaitAsync(Deadline);
    }

    [Fact]
    public async Task StopAsync_Running_CompletesTicks()
    {
        await _ticker.StartAsync(CancellationToken.None);
        await NextAttemptAsync(); // running (stopped before its Task.Run starts, .NET 10 never runs ExecuteAsync)

        await _ticker.StopAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.Equal(TaskStatus.RanToCompletion, _ticker.ExecuteTask!.Status);
        Assert.True(Ticks.TryRead(out var queued)); // the start tick is still there to read
        Assert.Equal(_start, queued.At);
        await Ticks.Completion.WaitAsync(Deadline); // then the channel is closed: the reader's loop ends
        Assert.False(_channels.Ticks.Writer.TryWrite(new Tick(_start)));
    }

    // The fake clock, saying when a timer is made on it: the ticker's loop has started.
    sealed class TimerCreations(FakeTimeProvider inner) : TimeProvider
    {
        readonly TaskCompletionSource _created = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Created => _created.Task;
        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();
        public override long GetTimestamp() => inner.GetTimestamp();
        public override long TimestampFrequency => inner.TimestampFrequency;
        public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = inner.CreateTimer(callback, state, dueTime, period);
            _created.TrySetResult();
            return timer;
        }
    }
}
