using System.Threading.Channels;
using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The state task over real channels and a real BackendTable, asked through StateClient as the
// handlers ask it. Wiring, isolation of a failing message, shutdown and the ejection wake timer;
// the rules themselves are BackendTableTests'.
public sealed class BackendStateTests : IAsyncLifetime
{
    const string A = "http://a:1", B = "http://b:2";
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    readonly ObservedTimeProvider _time = new();
    readonly PipelineChannels _channels = new();
    readonly RouteFactory _routes = new();
    readonly Channel<StateChange> _changes = Channel.CreateUnbounded<StateChange>();
    readonly LogSink _logs = new();
    readonly ILoggerFactory _loggerFactory;
    readonly StateClient _client;
    BackendState? _state;

    public BackendStateTests()
    {
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        _client = new StateClient(_channels);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_state is not null)
        {
            await _state.StopAsync(CancellationToken.None).WaitAsync(Deadline);
            _state.Dispose();
        }
        _loggerFactory.Dispose();
    }

    BackendState Create(LbConfig config)
    {
        var table = new BackendTable(config, _routes.Create, _time, c => _changes.Writer.TryWrite(c));
        return _state = new BackendState(_channels, table, _time, _loggerFactory.CreateLogger<BackendState>());
    }

    async Task<BackendState> StartAsync(LbConfig config)
    {
        var state = Create(config);
        await state.StartAsync(CancellationToken.None);
        return state;
    }

    static LbConfig OneFailureEjects(params string[] urls)
    {
        var config = TestConfigs.Create(urls);
        return config with { PassiveHealth = config.PassiveHealth with { ConsecutiveFailures = 1 } };
    }

    Task<Pick> PickAsync() => _client.PickAsync().AsTask().WaitAsync(Deadline);

    Task<StatusSnapshot> StatusAsync() => _client.StatusAsync().WaitAsync(Deadline);

    Task<StateChange> NextChangeAsync() => _changes.Reader.ReadAsync().AsTask().WaitAsync(Deadline);

    [Fact]
    public async Task PickAsync_Running_AnsweredInRoundRobinOrder()
    {
        await StartAsync(TestConfigs.Create(A, B));

        var first = await PickAsync();
        var second = await PickAsync();

        Assert.Equal(A, first.Backend!.Url);
        Assert.Equal(B, second.Backend!.Url);
        Assert.Equal(2, first.Settings.Retries);
        Assert.Equal(TimeSpan.FromSeconds(30), first.Settings.RequestTimeout);
    }

    [Fact]
    public async Task PickAsync_NoEligibleBackend_AnsweredWithNull()
    {
        var config = TestConfigs.Create(A);
        await StartAsync(config with { HealthCheck = config.HealthCheck with { UnhealthyThreshold = 1 } });
        await _client.TellAsync(new ProbeResult(_routes[A], _time.GetUtcNow(), 503, TimeSpan.Zero, null));
        await NextChangeAsync();

        var pick = await PickAsync();

        Assert.Null(pick.Backend); // the handler answers 503: it does not wait for a backend
    }

    [Fact]
    public async Task Batch_EventAndPicksQueuedTogether_EventAppliedFirst()
    {
        var config = TestConfigs.Create(A, B);
        Create(config with { HealthCheck = config.HealthCheck with { UnhealthyThreshold = 1 } });
        // Queued before the loop runs, so one batch holds both: A's failed probe and three picks.
        await _client.TellAsync(new ProbeResult(_routes[A], _time.GetUtcNow(), 500, TimeSpan.Zero, null));
        var picks = Enumerable.Range(0, 3).Select(_ => _client.PickAsync().AsTask()).ToArray();

        await _state!.StartAsync(CancellationToken.None);
        var answered = await Task.WhenAll(picks).WaitAsync(Deadline);

        // Picks first would have sent the first and third to A (round-robin starts there).
        Assert.All(answered, p => Assert.Equal(B, p.Backend!.Url));
    }

    [Fact]
    public async Task TellAsync_Outcomes_ReleaseInFlight()
    {
        await StartAsync(OneFailureEjects(A, B));
        var a1 = (await PickAsync()).Backend!;
        var b1 = (await PickAsync()).Backend!;
        var a2 = (await PickAsync()).Backend!;
        Assert.Equal([A, B, A], new[] { a1.Url, b1.Url, a2.Url });
        Assert.Equal(2, (await StatusAsync()).Backends[0].InFlight);

        await _client.TellAsync(new RequestOutcome(a1, Outcome.Response, 200));
        await _client.TellAsync(new RequestOutcome(a2, Outcome.ConnectRefused, 0));
        var ejected = await NextChangeAsync(); // applied in order: both outcomes are in now
        Assert.Equal((A, BackendHealth.Ejected), (ejected.Backend.Url, ejected.State));

        var status = await StatusAsync();
        var a = status.Backends.Single(s => s.Url == A);
        Assert.Equal((0, 2L, 1L, BackendHealth.Ejected), (a.InFlight, a.Requests, a.Failures, a.State));
        Assert.Equal(1, status.Backends.Single(s => s.Url == B).InFlight);
    }

    [Fact]
    public async Task StatusAsync_Running_AnswersAnImmutableSnapshot()
    {
        await StartAsync(TestConfigs.Create(TestConfigs.Backend(A), TestConfigs.Backend(B, weight: 3)));

        var before = await StatusAsync();
        await PickAsync();
        var after = await StatusAsync();

        Assert.Equal(BalancingNames.RoundRobin, before.Balancing);
        Assert.Equal([(A, 1, BackendHealth.Unknown), (B, 3, BackendHealth.Unknown)],
            before.Backends.Select(s => (s.Url, s.Weight, s.State)));
        Assert.Equal(0, before.Backends.Sum(s => s.InFlight)); // a reply is a copy, not a view
        Assert.Equal(1, after.Backends.Sum(s => s.InFlight));
    }

    [Fact]
    public async Task PickAsync_PolicyThrowsOnce_AskerGetsTheExceptionAndTheLoopGoesOn()
    {
        var state = await StartAsync(TestConfigs.Create(A, B));
        var bug = new InvalidOperationException("policy bug");
        state.Table.Policy = new ThrowOncePolicy(bug, state.Table.Policy);

        var faulted = await Assert.ThrowsAsync<InvalidOperationException>(PickAsync);
        var next = await PickAsync();

        Assert.Same(bug, faulted);
        Assert.Equal(A, next.Backend!.Url);
        var line = await _logs.WaitForAsync("failed to handle a PickRequest", Deadline);
        Assert.Equal(LogLevel.Error, line.Level);
        Assert.Same(bug, line.Exception);
        Assert.Equal(1, (await StatusAsync()).Backends.Sum(s => s.InFlight)); // the failed pick took no slot
        Assert.False(state.ExecuteTask!.IsCompleted);
    }

    [Fact]
    public async Task TellAsync_EventThrows_LoggedAndTheLoopGoesOn()
    {
        var state = await StartAsync(TestConfigs.Create(A, B));

        // A configuration no loader would pass: Reconcile throws on the unknown policy.
        await _client.TellAsync(new ConfigChanged(TestConfigs.Create(A) with { Balancing = "bogus" }));
        var line = await _logs.WaitForAsync("failed to handle a ConfigChanged", Deadline);

        Assert.Equal(LogLevel.Error, line.Level);
        Assert.IsType<ArgumentException>(line.Exception);
        Assert.Equal([A, B], (await StatusAsync()).Backends.Select(s => s.Url)); // nothing half-applied
        Assert.NotNull((await PickAsync()).Backend);
        Assert.False(state.ExecuteTask!.IsCompleted);
    }

    [Fact]
    public async Task TellAsync_ConfigChanged_ReconciledAndLogged()
    {
        await StartAsync(TestConfigs.Create(A));

        await _client.TellAsync(new ConfigChanged(TestConfigs.Create(A, B)));
        var added = await NextChangeAsync();

        Assert.Equal((B, BackendHealth.Unknown, "added [reload]"), (added.Backend.Url, added.State, added.Reason));
        await _logs.WaitForAsync($"Configuration reloaded: 2 backends, balancing round-robin; changed: backends added: {B}", Deadline);
        Assert.Equal([A, B], (await StatusAsync()).Backends.Select(s => s.Url));
    }

    [Fact]
    public async Task StopAsync_PickQueued_AnswersItCompletesTheChannelsAndEnds()
    {
        var state = await StartAsync(TestConfigs.Create(A));
        await PickAsync(); // running
        var late = _client.PickAsync().AsTask(); // a request still draining through Kestrel

        await state.StopAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.Equal(A, (await late.WaitAsync(Deadline)).Backend!.Url);
        Assert.Equal(TaskStatus.RanToCompletion, state.ExecuteTask!.Status);
        await _channels.Requests.Reader.Completion.WaitAsync(Deadline);
        await _channels.Events.Reader.Completion.WaitAsync(Deadline);
        // Nobody waits forever on a stopped state task: asking now fails at once.
        await Assert.ThrowsAsync<ChannelClosedException>(() => _client.PickAsync().AsTask().WaitAsync(Deadline));
        _state = null;
        state.Dispose();
    }

    [Fact]
    public async Task StopAsync_MessagesStillQueued_HandledFirstThenEveryBackendsPoolDisposed()
    {
        var openWhenChanged = new List<bool>(); // written on the loop, read after it has ended
        var table = new BackendTable(TestConfigs.Create(A, B), _routes.Create, _time,
            c => openWhenChanged.Add(!_routes.IsDisposed(c.Backend)));
        var state = _state = new BackendState(_channels, table, _time, _loggerFactory.CreateLogger<BackendState>());
        // Queued before the loop runs, so the stop finds them still to do.
        await _client.TellAsync(new ProbeResult(_routes[A], _time.GetUtcNow(), 200, TimeSpan.Zero, null));
        var late = _client.PickAsync().AsTask();
        await state.StartAsync(CancellationToken.None);

        await state.StopAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.NotNull((await late.WaitAsync(Deadline)).Backend);
        Assert.Equal([true], openWhenChanged); // a became healthy while its pool was still open
        Assert.True(_routes.IsDisposed(_routes[A]));
        Assert.True(_routes.IsDisposed(_routes[B]));
    }

    [Fact]
    public async Task StopAsync_ShutdownTimeoutAlreadySpent_ReturnsWithoutThrowingAndTheLoopStillDrains()
    {
        var state = Create(TestConfigs.Create(A));
        using var release = new ManualResetEventSlim();
        var gate = new GatePolicy(release);
        state.Table.Policy = gate;
        await state.StartAsync(CancellationToken.None);
        var held = _client.PickAsync().AsTask(); // the loop is inside Choose until released
        await gate.Entered.WaitAsync(Deadline);
        var late = _client.PickAsync().AsTask();

        // What the host passes once the shutdown timeout has run out.
        var stop = await Record.ExceptionAsync(() => state.StopAsync(new CancellationToken(canceled: true)).WaitAsync(Deadline));
        var loopWasRunning = !state.ExecuteTask!.IsCompleted;
        release.Set();

        Assert.Null(stop);
        Assert.True(loopWasRunning, "the loop ended before the stop returned: this test proves nothing");
        Assert.Equal(A, (await held.WaitAsync(Deadline)).Backend!.Url);
        Assert.Equal(A, (await late.WaitAsync(Deadline)).Backend!.Url);
        await state.ExecuteTask.WaitAsync(Deadline);
        Assert.True(state.ExecuteTask.IsCompletedSuccessfully);
        Assert.True(_routes.IsDisposed(_routes[A]));
    }

    [Fact]
    public async Task WakeTimer_EjectForPassesWithNoTraffic_EjectionEndReported()
    {
        await StartAsync(OneFailureEjects(A, B));
        var a = (await PickAsync()).Backend!;
        await _client.TellAsync(new RequestOutcome(a, Outcome.ConnectRefused, 0));
        Assert.Equal(BackendHealth.Ejected, (await NextChangeAsync()).State);

        // The loop arms its timer for the end of the ejection, then sleeps: no message comes.
        Assert.Equal(TimeSpan.FromSeconds(30), await _time.Armed.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
        _time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(BackendHealth.Ejected, (await StatusAsync()).Backends[0].State);
        _time.Advance(TimeSpan.FromSeconds(1));
        var ended = await NextChangeAsync();

        Assert.Equal((A, BackendHealth.Unknown, "ejection ended [passiveHealth.ejectFor]"), (ended.Backend.Url, ended.State, ended.Reason));
        Assert.Equal(BackendHealth.Unknown, (await StatusAsync()).Backends[0].State);
    }

    [Fact]
    public async Task WakeTimer_FiresABitEarly_RearmedAndEjectionEndStillReported()
    {
        // A real timer works in whole milliseconds and may fire just before the deadline, when
        // the ejection has not ended yet. The loop must set it again, or the end goes unnoticed
        // until some other message happens to come.
        _time.FirstFireEarlyBy = TimeSpan.FromMilliseconds(1);
        await StartAsync(OneFailureEjects(A, B));
        var a = (await PickAsync()).Backend!;
        await _client.TellAsync(new RequestOutcome(a, Outcome.ConnectRefused, 0));
        Assert.Equal(BackendHealth.Ejected, (await NextChangeAsync()).State);
        Assert.Equal(TimeSpan.FromSeconds(30), await _time.Armed.Reader.ReadAsync().AsTask().WaitAsync(Deadline));

        _time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(1)); // fires, too early
        Assert.Equal(TimeSpan.FromMilliseconds(1), await _time.Armed.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var ended = await NextChangeAsync();

        Assert.Equal((A, "ejection ended [passiveHealth.ejectFor]"), (ended.Backend.Url, ended.Reason));
    }

    // Holds the state loop inside Choose (on the loop's own thread) until released.
    sealed class GatePolicy(ManualResetEventSlim release) : IBalancingPolicy
    {
        readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Entered => _entered.Task;

        public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
        {
            _entered.TrySetResult();
            if (!release.Wait(Deadline)) throw new TimeoutException("the test never released the loop");
            return eligible[0];
        }
    }

    // NSubstitute (Castle.Core 5.1) cannot intercept a ReadOnlySpan parameter, hence a hand fake.
    sealed class ThrowOncePolicy(Exception bug, IBalancingPolicy inner) : IBalancingPolicy
    {
        int _calls;

        public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible) =>
            _calls++ == 0 ? throw bug : inner.Choose(eligible);
    }

    // A FakeTimeProvider that reports every due time its timers are set to (not "never"), so a
    // test can wait until the state loop has armed its wake timer before moving the clock.
    // FirstFireEarlyBy makes the first one fire that much early, as a real timer may.
    sealed class ObservedTimeProvider : FakeTimeProvider
    {
        public Channel<TimeSpan> Armed { get; } = Channel.CreateUnbounded<TimeSpan>();

        public TimeSpan FirstFireEarlyBy { get; set; }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new Timer(base.CreateTimer(callback, state, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan), this);
            timer.Change(dueTime, period);
            return timer;
        }

        TimeSpan Due(TimeSpan dueTime)
        {
            if (dueTime == Timeout.InfiniteTimeSpan) return dueTime;
            var early = FirstFireEarlyBy;
            FirstFireEarlyBy = TimeSpan.Zero;
            return dueTime - early;
        }

        sealed class Timer(ITimer inner, ObservedTimeProvider time) : ITimer
        {
            // Report only once the timer is really armed: a test that advances the clock as soon
            // as it reads Armed must find the timer set, or the advance would pass it by.
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                var changed = inner.Change(time.Due(dueTime), period);
                if (dueTime != Timeout.InfiniteTimeSpan) time.Armed.Writer.TryWrite(dueTime);
                return changed;
            }

            public void Dispose() => inner.Dispose();
            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
