using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Forwarding;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The state loop's own timer ends an ejection on time when no request comes, also when the
// timer fires a little before the ejection's end (System.Threading.Timer can: it truncates
// the due time to whole ms and runs on a coarser clock than GetUtcNow).
public sealed class BackendStateWakeTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Wake_TimerFiresJustBeforeEjectionEnds_RearmedAndEjectionEndsWithoutTraffic()
    {
        var time = new EarlyTimerClock();
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "backends": [ { "url": "http://127.0.0.1:1" } ],
              "passiveHealth": { "consecutiveFailures": 1, "ejectFor": "1s" } }
            """), "lb.json");
        var channels = new PipelineChannels();
        var client = new StateClient(channels);
        var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var table = new BackendTable(config, new BackendPools(client).Create, time,
            change => { if (change.Why is StateReason.EjectionEnded) ended.TrySetResult(); });
        var state = new BackendState(channels, table, time, NullLogger<BackendState>.Instance);
        await state.StartAsync(CancellationToken.None);
        try
        {
            var pick = await client.PickAsync().AsTask().WaitAsync(Deadline);
            await client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.BadGatewayStatus, 503));
            await time.ArmedAsync(); // for the ejection's end

            // No request from here on (each batch's Tick would end the ejection): only the timer can.
            time.Advance(TimeSpan.FromSeconds(1) - EarlyTimerClock.Early); // fires; the ejection is not over
            await time.ArmedAsync();
            var endedEarly = ended.Task.IsCompleted;
            time.Advance(EarlyTimerClock.Early);
            await ended.Task.WaitAsync(Deadline);

            Assert.False(endedEarly, "the ejection ended before its time");
        }
        finally
        {
            await state.StopAsync(CancellationToken.None);
        }
    }

    // A fake clock whose timers fire half a millisecond before they are due; tells when a timer
    // is armed (Change with a finite due time).
    sealed class EarlyTimerClock : FakeTimeProvider
    {
        public static readonly TimeSpan Early = TimeSpan.FromTicks(TimeSpan.TicksPerMillisecond / 2);
        readonly SemaphoreSlim _armed = new(0);

        public Task ArmedAsync() => _armed.WaitAsync(Deadline).ContinueWith(t =>
            Assert.True(t.Result, "the timer was not armed"), TaskScheduler.Default);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            new EarlyTimer(base.CreateTimer(callback, state, Shift(dueTime), period), this);

        static TimeSpan Shift(TimeSpan due) => due > Early ? due - Early : due;

        sealed class EarlyTimer(ITimer inner, EarlyTimerClock clock) : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                var changed = inner.Change(Shift(dueTime), period);
                if (dueTime != Timeout.InfiniteTimeSpan) clock._armed.Release();
                return changed;
            }

            public void Dispose() => inner.Dispose();
            public ValueTask DisposeAsync() => inner.DisposeAsync();
        }
    }
}
