using System.Threading.Channels;
using Microsoft.Extensions.Hosting;

namespace LoadBalancer.Pipeline;

// Stage 1. Writes a Tick into ticks at startup and then every interval, from a PeriodicTimer on
// the injected TimeProvider (tests advance a FakeTimeProvider instead of sleeping). ticks has
// one slot and drops the NEW tick when full (DropWrite; the waiting one stays): a slow reader
// misses ticks. Go's time.Ticker up to Go 1.22; from 1.23 its channel is unbuffered.
// A new interval from periods (after a reload) applies at once: the next tick comes one new
// interval after the change, not when the old interval runs out (a reload applies within 2 s).
// The first tick waits for startAfter (the host's ApplicationStarted: every listener is bound), so
// no probe runs in a process that then fails to listen. Completes ticks when it stops.
//   Go: for { select { case t := <-ticker.C: select { case ticks <- t: default: }; case d := <-periods: ticker.Reset(d) } }
public sealed class Ticker(ChannelWriter<Tick> ticks, ChannelReader<TimeSpan> periods, TimeSpan interval, TimeProvider time,
    CancellationToken startAfter = default) : BackgroundService
{
    static readonly Task<bool> Never = new TaskCompletionSource<bool>().Task; // Go: a nil channel

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            using var timer = new PeriodicTimer(interval, time);
            await Started(stoppingToken).ConfigureAwait(false);
            ticks.TryWrite(new Tick(time.GetUtcNow())); // the first round starts at startup
            // A two-case select: one pending wait on each, re-armed only when it has finished.
            var tick = timer.WaitForNextTickAsync(stoppingToken).AsTask();
            var period = periods.WaitToReadAsync(stoppingToken).AsTask();
            while (true)
            {
                await Task.WhenAny(tick, period).ConfigureAwait(false);
                if (period.IsCompleted)
                {
                    var more = await period.ConfigureAwait(false);
                    while (periods.TryRead(out var p)) { timer.Period = p; _periodsRead++; } // restarts the timer: next tick p from now
                    period = more ? periods.WaitToReadAsync(stoppingToken).AsTask() : Never;
                }
                if (tick.IsCompleted)
                {
                    if (!await tick.ConfigureAwait(false)) break;
                    ticks.TryWrite(new Tick(time.GetUtcNow())); // slot full (reader behind): dropped, yet TryWrite says true
                    tick = timer.WaitForNextTickAsync(stoppingToken).AsTask();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            ticks.TryComplete(); // close(ticks): the health checker's loop ends
        }
    }

    // Completes when startAfter fires (at once without one); throws once stopping.
    async Task Started(CancellationToken stoppingToken)
    {
        if (!startAfter.CanBeCanceled || startAfter.IsCancellationRequested) return;
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var _ = startAfter.UnsafeRegister(static s => ((TaskCompletionSource)s!).TrySetResult(), started);
        await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
    }

    long _periodsRead;

    /// <summary>New intervals taken from periods since startup (this loop alone writes it; the dashboard reads it).</summary>
    public long PeriodsRead => Volatile.Read(ref _periodsRead);
}
