using System.Threading.Channels;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Probing;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;

namespace LoadBalancer.Tests.Pipeline;

// The health checker between real channels. The test plays the state task: it reads the
// ProbePlanRequest from requests and answers it, then reads the ProbeResults from events.
public sealed class HealthCheckerTests : IDisposable
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    readonly FakeTimeProvider _time = new();
    readonly PipelineChannels _channels = new();
    readonly RouteFactory _routes = new();
    readonly IBackendProbe _probe = Substitute.For<IBackendProbe>();
    readonly LbConfig _config = TestConfigs.Create("http://a:1", "http://b:2", "http://c:3");
    readonly BackendRoute[] _targets;
    readonly List<string> _order = []; // every channel access, in order: ticks read, events and requests written
    readonly HealthChecker _checker;

    public HealthCheckerTests()
    {
        _targets = _config.Backends.Select(_routes.Create).ToArray();
        _probe.ProbeAsync(Arg.Any<BackendRoute>(), Arg.Any<HealthCheckConfig>(), Arg.Any<CancellationToken>())
            .Returns(call => Task.FromResult(Passed(call.Arg<BackendRoute>())));
        var events = new ObservedWriter<StateEvent>(_channels.Events.Writer, (e, _) => Record(e is ProbeResult p ? $"result {p.Backend.Url}" : e.ToString()));
        var requests = new ObservedWriter<StateRequest>(_channels.Requests.Writer, (r, _) => Record(r.GetType().Name));
        var ticks = new ObservedReader<Tick>(_channels.Ticks.Reader, (read, _) => Record(read ? "tick" : "no tick"));
        _checker = new HealthChecker(ticks, new StateClient(events, requests), _probe);
    }

    public void Dispose() => _checker.Dispose();

    void Record(string what)
    {
        lock (_order) _order.Add(what);
    }

    ProbeResult Passed(BackendRoute backend) => new(backend, _time.GetUtcNow(), 200, TimeSpan.FromMilliseconds(3), null);

    async Task<ProbePlanRequest> AnswerPlanAsync(params BackendRoute[] targets)
    {
        var request = await _channels.Requests.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
        var plan = Assert.IsType<ProbePlanRequest>(request);
        plan.Reply.SetResult(new ProbePlan(targets, _config.HealthCheck));
        return plan;
    }

    async Task<ProbeResult> ReadResultAsync() =>
        Assert.IsType<ProbeResult>(await _channels.Events.Reader.ReadAsync().AsTask().WaitAsync(Deadline));

    [Fact]
    public async Task Tick_ThreeBackends_WritesOneProbeResultPerBackend()
    {
        await _checker.StartAsync(CancellationToken.None);

        Assert.True(_channels.Ticks.Writer.TryWrite(new Tick(_time.GetUtcNow())));
        await AnswerPlanAsync(_targets);
        var results = new[] { await ReadResultAsync(), await ReadResultAsync(), await ReadResultAsync() };

        Assert.Equal(_targets.Select(t => t.Url).Order(), results.Select(r => r.Backend.Url).Order());
        Assert.All(results, r => Assert.Equal(200, r.Status));
        foreach (var target in _targets)
            await _probe.Received(1).ProbeAsync(target, _config.HealthCheck, Arg.Any<CancellationToken>());
        Assert.False(_channels.Events.Reader.TryRead(out _)); // exactly one per backend
    }

    [Fact]
    public async Task Tick_ProbeHeldInFlight_NextTickReadOnlyAfterTheRound()
    {
        var held = new TaskCompletionSource<ProbeResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = _targets[1];
        _probe.ProbeAsync(slow, Arg.Any<HealthCheckConfig>(), Arg.Any<CancellationToken>()).Returns(held.Task);
        await _checker.StartAsync(CancellationToken.None);

        _channels.Ticks.Writer.TryWrite(new Tick(_time.GetUtcNow()));
        await AnswerPlanAsync(_targets);
        // The fast backends' results are not held back by the slow one.
        var fast = new[] { await ReadResultAsync(), await ReadResultAsync() };
        Assert.DoesNotContain(fast, r => r.Backend == slow);

        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(_channels.Ticks.Writer.TryWrite(new Tick(_time.GetUtcNow())));
        Assert.Equal(1, _channels.Ticks.Reader.Count); // the round is not done: the second tick waits
        Assert.False(_channels.Requests.Reader.TryRead(out _)); // and no second round was asked for

        held.SetResult(Passed(slow));
        Assert.Equal(slow, (await ReadResultAsync()).Backend);
        await AnswerPlanAsync(_targets); // now the second tick is read: a new round begins
        Assert.Equal(0, _channels.Ticks.Reader.Count);
        for (var i = 0; i < 3; i++) await ReadResultAsync();

        lock (_order)
        {
            // After taking the first tick, the checker did not look at ticks again (not even to
            // find it empty) until the held result was told; only then did it ask for a new plan.
            var order = string.Join(", ", _order);
            var firstTick = _order.IndexOf("tick");
            var heldResult = _order.IndexOf($"result {slow.Url}");
            var nextLook = _order.FindIndex(firstTick + 1, x => x is "tick" or "no tick");
            Assert.True(firstTick < heldResult && heldResult < nextLook, order);
            Assert.Equal(nameof(ProbePlanRequest), _order.Skip(heldResult).First(x => x.EndsWith("Request")));
            Assert.Equal(2, _order.Count(x => x == nameof(ProbePlanRequest)));
        }
    }

    [Fact]
    public async Task TicksCompleted_AfterALastTick_FinishesTheRoundAndEnds()
    {
        await _checker.StartAsync(CancellationToken.None);

        _channels.Ticks.Writer.TryWrite(new Tick(_time.GetUtcNow()));
        _channels.Ticks.Writer.Complete();
        await AnswerPlanAsync(_targets[0]);
        Assert.Equal(_targets[0], (await ReadResultAsync()).Backend);

        await _checker.ExecuteTask!.WaitAsync(Deadline);
        Assert.Equal(TaskStatus.RanToCompletion, _checker.ExecuteTask.Status);
        Assert.False(_channels.Requests.Reader.TryRead(out _));
    }

    [Fact]
    public async Task TicksCompleted_Idle_Ends()
    {
        await _checker.StartAsync(CancellationToken.None);

        _channels.Ticks.Writer.Complete();

        await _checker.ExecuteTask!.WaitAsync(Deadline);
        Assert.Equal(TaskStatus.RanToCompletion, _checker.ExecuteTask.Status);
        await _probe.DidNotReceiveWithAnyArgs().ProbeAsync(default!, default!, default);
    }

    [Fact]
    public async Task StopAsync_ProbeInFlight_CancelsTheProbeAndEnds()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _probe.ProbeAsync(Arg.Any<BackendRoute>(), Arg.Any<HealthCheckConfig>(), Arg.Any<CancellationToken>())
            .Returns(async call =>
            {
                started.SetResult();
                await Task.Delay(Timeout.Infinite, call.Arg<CancellationToken>()); // only shutdown ends it
                return Passed(call.Arg<BackendRoute>());
            });
        await _checker.StartAsync(CancellationToken.None);
        _channels.Ticks.Writer.TryWrite(new Tick(_time.GetUtcNow()));
        await AnswerPlanAsync(_targets[0]);
        await started.Task.WaitAsync(Deadline);

        await _checker.StopAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.Equal(TaskStatus.RanToCompletion, _checker.ExecuteTask!.Status);
        Assert.False(_channels.Events.Reader.TryRead(out _)); // a cancelled probe is not a result
    }

    [Fact]
    public async Task StopAsync_TimeoutSpentAndStateTaskAlreadyClosed_LateResultEndsTheLoopWithoutFault()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource<ProbeResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _probe.ProbeAsync(Arg.Any<BackendRoute>(), Arg.Any<HealthCheckConfig>(), Arg.Any<CancellationToken>())
            .Returns(_ => { started.SetResult(); return answer.Task; }); // done just as the stop comes
        await _checker.StartAsync(CancellationToken.None);
        _channels.Ticks.Writer.TryWrite(new Tick(_time.GetUtcNow()));
        await AnswerPlanAsync(_targets[0]);
        await started.Task.WaitAsync(Deadline);

        // A stop that ran out of time: the host does not wait for this loop, and the state task
        // (stopped next) closes its channels before the probe's result is told.
        await _checker.StopAsync(new CancellationToken(canceled: true)).WaitAsync(Deadline);
        _channels.Events.Writer.TryComplete();
        _channels.Requests.Writer.TryComplete();
        answer.SetResult(Passed(_targets[0]));

        await _checker.ExecuteTask!.WaitAsync(Deadline);
        Assert.Equal(TaskStatus.RanToCompletion, _checker.ExecuteTask.Status);
    }
}
