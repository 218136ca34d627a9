using System.Threading.Channels;
using Microsoft.Extensions.Hosting;

namespace LoadBalancer.Pipeline;

// Stage 1. Writes a Tick into ticks at startup and then every interval, from a PeriodicTimer on
// the injected TimeProvider (tests advance a FakeTimeProvider instead of sleeping). ticks has
// one slot and drops writes when full, exactly Go's time.Ticker: a slow reader misses ticks.
// A new interval from periods (after a reload) applies from the next tick on.
// Completes ticks when it stops.   Go: for t := range ticker.C { select { case ticks <- t: default: } }
public sealed class Ticker(ChannelWriter<Tick> ticks, ChannelReader<TimeSpan> periods, TimeSpan interval, TimeProvider time)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            ticks.TryWrite(new Tick(time.GetUtcNow())); // the first round starts at startup
            using var timer = new PeriodicTimer(interval, time);
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                ticks.TryWrite(new Tick(time.GetUtcNow())); // slot full (reader behind): dropped, yet TryWrite says true
                while (periods.TryRead(out var period)) timer.Period = period; // select with default
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
}
