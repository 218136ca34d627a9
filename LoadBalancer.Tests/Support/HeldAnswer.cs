using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Support;

// A backend handler that holds every request until the test releases it: Arrived completes when
// the first request is in, Release lets them all answer "slow done".
public sealed class HeldAnswer
{
    readonly TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Arrived => _arrived.Task;

    public void Release() => _release.TrySetResult();

    public async Task Handler(HttpContext context)
    {
        _arrived.TrySetResult();
        await _release.Task;
        await context.Response.WriteAsync("slow done");
    }
}
