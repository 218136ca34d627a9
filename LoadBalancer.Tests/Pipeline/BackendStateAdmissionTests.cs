using LoadBalancer.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The queue's wiring in the state loop, over real channels as a handler asks: a queued pick
// leaves when its client's token fires (the abort's callback writes PickCancelled), the loop's
// one timer answers a waiter whose queue.timeout passed with no other message coming, and a
// stop answers whoever still waits.
public sealed class BackendStateAdmissionTests : IAsyncLifetime
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    readonly FakeTimeProvider _time = new();
    readonly PipelineChannels _channels = new();
    readonly StateClient _client;
    readonly BackendState _state;

    public BackendStateAdmissionTests()
    {
        var config = TestConfigs.Create("http://a:1");
        config = config with { Admission = config.Admission with { MaxInFlightPerBackend = 1 } };
        _client = new StateClient(_channels);
        _state = new BackendState(_channels, new BackendTable(config, new RouteFactory().Create, _time, _ => { }), _time,
            NullLogger<BackendState>.Instance);
    }

    public Task InitializeAsync() => _state.StartAsync(CancellationToken.None);

    public async Task DisposeAsync()
    {
        await _state.StopAsync(CancellationToken.None).WaitAsync(Deadline);
        _state.Dispose();
    }

    async Task<StatusSnapshot> WaitForQueueAsync(int length)
    {
        while (true)
        {
            var status = await _client.StatusAsync().WaitAsync(Deadline);
            if (status.QueueLength == length) return status;
            await Task.Yield();
        }
    }

    [Fact]
    public async Task PickAsync_ClientAbortsWhileQueued_AnsweredCancelledWithoutASlot()
    {
        var holder = await _client.PickAsync().AsTask().WaitAsync(Deadline);
        using var client = new CancellationTokenSource();
        var queued = _client.PickAsync(null, client.Token).AsTask();
        await WaitForQueueAsync(1).WaitAsync(Deadline);

        client.Cancel();
        var answer = await queued.WaitAsync(Deadline);

        Assert.Equal(Refusal.Cancelled, answer.Refused);
        var status = await WaitForQueueAsync(0).WaitAsync(Deadline);
        Assert.Equal(1, status.Backends[0].InFlight);
        await _client.TellOutcomeAsync(new RequestOutcome(holder.Backend!, Outcome.Response, 200));
        Assert.NotNull((await _client.PickAsync().AsTask().WaitAsync(Deadline)).Backend); // its slot is free
    }

    [Fact]
    public async Task PickAsync_QueueTimeoutPassesWithNoOtherMessage_TheLoopsTimerAnswersIt()
    {
        await _client.PickAsync().AsTask().WaitAsync(Deadline);
        var queued = _client.PickAsync().AsTask();
        await WaitForQueueAsync(1).WaitAsync(Deadline);

        _time.Advance(TimeSpan.FromSeconds(5)); // queue.timeout's default

        var answer = await queued.WaitAsync(Deadline);
        Assert.Equal(Refusal.QueueTimeout, answer.Refused);
        Assert.Equal(TimeSpan.FromSeconds(5), answer.Waited);
    }

    [Fact]
    public async Task StopAsync_WithWaiters_AnswersThemStopping()
    {
        await _client.PickAsync().AsTask().WaitAsync(Deadline);
        var queued = _client.PickAsync().AsTask();
        await WaitForQueueAsync(1).WaitAsync(Deadline);

        await _state.StopAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.Equal(Refusal.Stopping, (await queued.WaitAsync(Deadline)).Refused);
    }
}
