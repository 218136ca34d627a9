using System.Text.Json.Nodes;
using System.Threading.Channels;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Probing;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Exercises;

// Exercise 6 in docs/exercises.md: a reload cancels the probe round in flight and starts a new
// one with the new configuration, at once. Today a round runs to its end (up to
// healthCheck.timeout per probe) probing backends that may be gone, and the new backends wait a
// whole interval for their first probe. Through the real app (Program.Build), with a fake clock
// and a probe the test holds in flight; it fails until the exercise is done.
[Trait("Category", "Exercise")]
public sealed class ReloadCancelsProbeRoundExerciseTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    [ExerciseFact]
    public async Task Reload_WhileARoundIsProbing_CancelsItAndProbesTheNewBackendsAtOnce()
    {
        var clock = new FakeClock();
        var probe = new HeldProbes();
        await using var lb = await Balancer.StartAsync(Config("http://a.test"), clock, probe);

        // The startup round: a's probe is in flight, held by the test.
        var a = await probe.NextAsync();
        Assert.Equal("http://a.test", a.Backend.Url);

        // lb.json now names b instead. The watcher polls on the fake clock.
        await lb.WriteConfigAsync(Config("http://b.test"));
        await clock.PeriodicTimerCreatedAsync(ConfigWatcher.PollInterval);
        clock.Advance(ConfigWatcher.PollInterval);
        await lb.Logs.WaitForAsync("Configuration reloaded", Deadline);

        // a's probe is cancelled (a is gone), and a round for the new configuration starts now,
        // not an hour from now: the clock does not move.
        await a.Cancelled.WaitAsync(Deadline);
        var b = await probe.NextAsync();
        Assert.Equal("http://b.test", b.Backend.Url);

        // The checker survived the cancelled round: b's result counts, and the next tick probes again.
        b.Pass(clock);
        await lb.Logs.WaitForAsync("Backend http://b.test is now healthy", Deadline);
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal("http://b.test", (await probe.NextAsync()).Backend.Url);
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.StartsWith("Probe http://a.test", StringComparison.Ordinal)); // the cancelled probe told nothing
    }

    static JsonObject Config(string url) => new()
    {
        ["listen"] = "http://127.0.0.1:0",
        ["admin"] = "http://127.0.0.1:0",
        ["backends"] = new JsonArray(new JsonObject { ["url"] = url }),
        ["healthCheck"] = new JsonObject { ["interval"] = "1h", ["timeout"] = "1h", ["healthyThreshold"] = 1 },
    };

    // Every probe the health checker starts is handed to the test and waits for it. A probe whose
    // token is cancelled throws OperationCanceledException, as HttpBackendProbe does.
    sealed class HeldProbes : IBackendProbe
    {
        readonly Channel<Held> _started = Channel.CreateUnbounded<Held>();

        public Task<ProbeResult> ProbeAsync(BackendRoute backend, HealthCheckConfig settings, CancellationToken cancellationToken)
        {
            var held = new Held(backend, cancellationToken);
            _started.Writer.TryWrite(held);
            return held.Result;
        }

        public Task<Held> NextAsync() => _started.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
    }

    sealed class Held
    {
        readonly TaskCompletionSource<ProbeResult> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TaskCompletionSource _cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Held(BackendRoute backend, CancellationToken token)
        {
            Backend = backend;
            token.Register(() =>
            {
                _cancelled.TrySetResult();
                _result.TrySetCanceled(token);
            });
        }

        public BackendRoute Backend { get; }
        public Task<ProbeResult> Result => _result.Task;
        /// <summary>Completes when the checker cancels this probe.</summary>
        public Task Cancelled => _cancelled.Task;

        public void Pass(TimeProvider time) => _result.TrySetResult(new ProbeResult(Backend, time.GetUtcNow(), 200, TimeSpan.FromMilliseconds(1), null));
    }
}
