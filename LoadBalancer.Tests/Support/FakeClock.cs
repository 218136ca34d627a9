using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Support;

// A FakeTimeProvider that tells when a periodic timer has been created. Since .NET 10 a
// BackgroundService's ExecuteAsync runs on the thread pool, so the Ticker's PeriodicTimer may
// not exist yet when the app's StartAsync returns; an Advance before it exists would be lost.
public sealed class FakeClock : FakeTimeProvider
{
    readonly ConcurrentDictionary<TimeSpan, TaskCompletionSource> _periodic = new();

    TaskCompletionSource Slot(TimeSpan period) =>
        _periodic.GetOrAdd(period, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        if (period > TimeSpan.Zero) Slot(period).TrySetResult();
        return timer;
    }

    /// <summary>Completes once a timer repeating every <paramref name="period"/> exists (a PeriodicTimer).</summary>
    public Task PeriodicTimerCreatedAsync(TimeSpan period) => Slot(period).Task.WaitAsync(TimeSpan.FromSeconds(10));
}
