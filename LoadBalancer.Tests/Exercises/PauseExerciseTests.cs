using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Exercises;

// Exercise 5 in docs/exercises.md: a third case in the state task's select. PipelineChannels
// gets a public Channel<bool> Pause (true: pause, false: resume), read by BackendState alongside
// events and requests. While paused, every pick is answered with no backend (clients get 503)
// and everything else goes on: events are applied, /status is answered. Looked up by reflection
// so this compiles before the exercise is done; it fails until the channel exists and works.
[Trait("Category", "Exercise")]
public sealed class PauseExerciseTests : IAsyncLifetime
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);
    static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    readonly PipelineChannels _channels = new();
    readonly StateClient _client;
    readonly BackendState _state;

    public PauseExerciseTests()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "backends": [ { "url": "http://a.test" }, { "url": "http://b.test" } ] }
            """), "lb.json");
        var id = 0;
        var table = new BackendTable(config, b => new BackendRoute(++id, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())),
            new FakeTimeProvider(Start), _ => { });
        _client = new StateClient(_channels);
        _state = new BackendState(_channels, table, new FakeTimeProvider(Start), NullLogger<BackendState>.Instance);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(Deadline);
        if (_state.ExecuteTask is not null) await _state.StopAsync(stopping.Token);
        _state.Dispose();
    }

    [ExerciseFact]
    public async Task Pause_TrueThenFalse_PicksGetNoBackendWhilePausedAndTheRestGoesOn()
    {
        var pause = Pause();
        await _state.StartAsync(CancellationToken.None);
        Assert.NotNull((await PickAsync()).Backend);

        // Pause. The pause and the next pick travel on two channels, and nothing orders two
        // channels, so ask until the pause shows (it must, within the deadline), then it holds.
        Assert.True(pause.Writer.TryWrite(true));
        await PickUntilAsync(p => p.Backend is null);
        for (var i = 0; i < 3; i++) Assert.Null((await PickAsync()).Backend);

        // Paused is not stopped: events are applied and /status is answered.
        var a = (await _client.ProbePlanAsync().WaitAsync(Deadline)).Targets.Single(t => t.Url == "http://a.test");
        await _client.TellAsync(new ProbeResult(a, Start, 200, TimeSpan.FromMilliseconds(1), null));
        var status = await StatusUntilAsync(s => s.Backends.Single(b => b.Url == "http://a.test").State == BackendHealth.Healthy);
        Assert.Equal(2, status.Backends.Length);

        // Resume: picks get backends again.
        Assert.True(pause.Writer.TryWrite(false));
        await PickUntilAsync(p => p.Backend is not null);
    }

    [ExerciseFact]
    public async Task Pause_WrittenWithPicksAlreadyQueued_AppliesBeforeThosePicks()
    {
        // The point of a control channel: it is looked at first. A pause and three picks are
        // queued before the state task runs; in its first batch it must see the pause first.
        var pause = Pause();
        Assert.True(pause.Writer.TryWrite(true));
        var picks = Enumerable.Range(0, 3).Select(_ => PickAsync()).ToArray();

        await _state.StartAsync(CancellationToken.None);

        foreach (var pick in picks) Assert.Null((await pick).Backend);
    }

    [ExerciseFact]
    public async Task StopAsync_WithThePauseChannelStillOpen_TheStateTaskEnds()
    {
        // The third case must not keep the loop alive: a stop closes events and requests, and the
        // loop ends once they are drained, whatever the pause channel does (Go: set it to nil).
        Pause();
        await _state.StartAsync(CancellationToken.None);
        Assert.NotNull((await PickAsync()).Backend);

        using var stopping = new CancellationTokenSource(Deadline);
        await _state.StopAsync(stopping.Token);

        Assert.True(_state.ExecuteTask!.IsCompletedSuccessfully, "the state task did not end after StopAsync");
    }

    Channel<bool> Pause()
    {
        var property = typeof(PipelineChannels).GetProperty("Pause");
        Assert.True(property is not null, "PipelineChannels has no public Pause property yet");
        return Assert.IsAssignableFrom<Channel<bool>>(property.GetValue(_channels));
    }

    async Task<Pick> PickAsync()
    {
        var pick = await _client.PickAsync().AsTask().WaitAsync(Deadline);
        if (pick.Backend is { } b) await _client.TellAsync(new RequestOutcome(b, Outcome.Response, 200)); // release the slot
        return pick;
    }

    async Task PickUntilAsync(Func<Pick, bool> done)
    {
        var clock = Stopwatch.StartNew();
        while (!done(await PickAsync()))
            Assert.True(clock.Elapsed < Deadline, "the picks never changed");
    }

    async Task<StatusSnapshot> StatusUntilAsync(Func<StatusSnapshot, bool> done)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var snapshot = await _client.StatusAsync().WaitAsync(Deadline);
            if (done(snapshot)) return snapshot;
            Assert.True(clock.Elapsed < Deadline, "the status never changed");
        }
    }
}
