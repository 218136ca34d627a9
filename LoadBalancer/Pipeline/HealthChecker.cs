using System.Threading.Channels;
using LoadBalancer.Probing;
using Microsoft.Extensions.Hosting;

namespace LoadBalancer.Pipeline;

// Stage 2. For every tick: asks the state task which backends to probe, probes them all at
// once, and tells the state task each result as soon as it is in (a slow backend does not hold
// back the others' results). The next tick is read only when the whole round is done, so a
// round slower than the interval makes the ticker drop ticks rather than pile up rounds.
// Ends when ticks is completed.   Go: for t := range ticks { for _, b := range bs { go probe(b) }; wg.Wait() }
public sealed class HealthChecker(ChannelReader<Tick> ticks, StateClient state, IBackendProbe probe) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var tick in ticks.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                var plan = await state.ProbePlanAsync().ConfigureAwait(false); _ticksRead++;
                var round = new Task[plan.Targets.Length];
                for (var i = 0; i < round.Length; i++)
                    round[i] = ProbeOneAsync(plan.Targets[i], plan, stoppingToken);
                await Task.WhenAll(round).ConfigureAwait(false); // sync.WaitGroup.Wait()
            }
        }
        catch (Exception e) when (stoppingToken.IsCancellationRequested && e is OperationCanceledException or ChannelClosedException)
        {
            // Shutdown: probes in flight were cancelled; their results no longer matter. A stop
            // whose time ran out does not wait for this loop, so the state task may have closed
            // its channels already: a late result or plan request then finds them closed.
        }
    }

    async Task ProbeOneAsync(BackendRoute target, ProbePlan plan, CancellationToken stoppingToken)
    {
        var result = await probe.ProbeAsync(target, plan.Settings, stoppingToken).ConfigureAwait(false);
        await state.TellAsync(result).ConfigureAwait(false);
    }

    long _ticksRead;

    /// <summary>Ticks taken from ticks since startup (this loop alone writes it; the dashboard reads it).</summary>
    public long TicksRead => Volatile.Read(ref _ticksRead);
}
