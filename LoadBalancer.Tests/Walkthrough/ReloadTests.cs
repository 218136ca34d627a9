using System.Text.Json.Nodes;
using System.Threading.Channels;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Walkthrough;

// docs/walkthrough.md, "Reload": ConfigWatcher reads the changed lb.json and tells two stages.
// The state task gets ConfigChanged on events (backends added, kept or drained); the ticker gets
// the new probe interval on periods and uses it at once. The test plays the health checker: it
// reads ticks itself.
public sealed class ReloadTests : IAsyncLifetime
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);
    static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    readonly string _dir = Directory.CreateTempSubdirectory("lb-walkthrough-").FullName;
    readonly WatchedClock _time = new(Start);
    readonly PipelineChannels _channels = new();
    readonly LogSink _logs = new();
    readonly ILoggerFactory _loggers;
    BackendState? _state;
    Ticker? _ticker;

    public ReloadTests() => _loggers = LoggerFactory.Create(l => l.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(Deadline);
        if (_ticker is not null) await _ticker.StopAsync(stopping.Token);
        if (_state is not null) await _state.StopAsync(stopping.Token);
        _loggers.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task PollAsync_FileChanged_StateTaskReconcilesAndTickerUsesTheNewIntervalAtOnce()
    {
        var path = Path.Combine(_dir, "lb.json");
        await File.WriteAllTextAsync(path, Json("1h", "http://a.test", "http://b.test"));
        var config = ConfigLoader.Load(path);
        var client = new StateClient(_channels);
        var id = 0;
        var tableLog = _loggers.CreateLogger<BackendTable>();
        var table = new BackendTable(config, b => new BackendRoute(++id, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())), _time,
            change =>
            {
                if (change.Removed) Log.BackendRemoved(tableLog, change.Backend.Url, change.Reason);
                else Log.BackendChanged(tableLog, change.Backend.Url, change.State.Label(), change.Reason);
            });
        _state = new BackendState(_channels, table, _time, _loggers.CreateLogger<BackendState>());
        _ticker = new Ticker(_channels.Ticks.Writer, _channels.Periods.Reader, config.HealthCheck.Interval, _time);
        var watcher = new ConfigWatcher(path, config, client, _channels.Periods.Writer, _time, _loggers.CreateLogger<ConfigWatcher>());
        await _state.StartAsync(CancellationToken.None);
        await _ticker.StartAsync(CancellationToken.None);
        Assert.Equal(Start, (await NextTickAsync()).At); // the startup tick; the next is an hour away

        // Someone edits lb.json: b is gone, probes every 10 s. The watcher polls twice a second;
        // here the test calls its poll once.
        await File.WriteAllTextAsync(path, Json("10s", "http://a.test"));
        await watcher.PollAsync();

        // The state task got ConfigChanged: b had nothing in flight, so it drains and is removed
        // at once, its pool closed. Probe plans no longer name it.
        await _logs.WaitForAsync("Configuration reloaded: 1 backends", Deadline);
        await _logs.WaitForAsync("Backend http://b.test removed: drained; its connection pool is closed [reload]", Deadline);
        var plan = await client.ProbePlanAsync().WaitAsync(Deadline);
        Assert.Equal(["http://a.test"], plan.Targets.Select(t => t.Url));

        // The ticker got 10 s on periods and re-armed its timer right away (the clock sees it)...
        Assert.Equal(TimeSpan.FromSeconds(10), await _time.PeriodChanges.Reader.ReadAsync().AsTask().WaitAsync(Deadline));

        // ...so the next tick comes 10 s after the change, not when the old hour runs out.
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(Start + TimeSpan.FromSeconds(10), (await NextTickAsync()).At);
    }

    Task<Tick> NextTickAsync() => _channels.Ticks.Reader.ReadAsync().AsTask().WaitAsync(Deadline);

    static string Json(string interval, params string[] urls) => new JsonObject
    {
        ["backends"] = new JsonArray(urls.Select(u => (JsonNode)new JsonObject { ["url"] = u }).ToArray()),
        ["healthCheck"] = new JsonObject { ["interval"] = interval },
    }.ToJsonString();

    // A FakeTimeProvider that reports every new period a timer is given (PeriodicTimer.Period
    // does this), so a test knows when the ticker has taken a new interval without sleeping.
    sealed class WatchedClock(DateTimeOffset start) : FakeTimeProvider(start)
    {
        public Channel<TimeSpan> PeriodChanges { get; } = Channel.CreateUnbounded<TimeSpan>();

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new Watched(base.CreateTimer(callback, state, dueTime, period), this);

        sealed class Watched(ITimer inner, WatchedClock clock) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                var changed = inner.Change(dueTime, period);
                if (period != Timeout.InfiniteTimeSpan) clock.PeriodChanges.Writer.TryWrite(period);
                return changed;
            }

            public void Dispose() => inner.Dispose();
            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
