using System.Diagnostics;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Integration;

// A stop whose drain runs out: a request that is still open when the shutdown timeout ends is
// cut, one line says how many were, and the stop still ends normally (exit 0 for the process).
// Its own class, so it runs alongside ShutdownTests rather than after them.
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class ShutdownTimeoutTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);
    static readonly TimeSpan ShortStop = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task StopAsync_RequestOpenWhenTimeoutRunsOut_CutLoggedAndStopCompletes()
    {
        var hanging = new HangingBackend();
        await using var a = await TestBackend.StartAsync("a", handler: hanging.Handle);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a), shutdownTimeout: ShortStop);
        var inFlight = lb.Client.GetAsync("/hang");
        await hanging.Arrived.WaitAsync(Deadline);

        var clock = Stopwatch.StartNew();
        var stop = await Record.ExceptionAsync(() => lb.App.StopAsync().WaitAsync(ShortStop + Deadline));
        var took = clock.Elapsed;
        var client = await Record.ExceptionAsync(() => inFlight.WaitAsync(Deadline));

        Assert.Null(stop);
        Assert.IsType<HttpRequestException>(client); // cut: the connection closed without an answer
        var cut = Assert.Single(lb.Logs.Lines, l => l.Message.Contains("were cut"));
        Assert.Equal("Stopping: the 2 s drain ran out; 1 requests still in flight were cut", cut.Message);
        // Kestrel gives the connections it aborts up to 1 s to end; a busy machine gets more room.
        Assert.True(took < ShortStop + TimeSpan.FromSeconds(5), $"the stop took {took.TotalSeconds:0.00} s");
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task Signal_RequestOpenWhenTimeoutRunsOut_CutLoggedAndExitsZero()
    {
        var hanging = new HangingBackend();
        await using var a = await TestBackend.StartAsync("a", handler: hanging.Handle);
        var dir = Directory.CreateTempSubdirectory("lb-sigterm-");
        try
        {
            // Main's test seam: the real process drains for 30 s, the contract's figure.
            var (started, listen, _) = await ShutdownTests.StartProcessAsync(a, dir,
                new Dictionary<string, string> { ["LOADBALANCER_TEST_SHUTDOWN_TIMEOUT"] = "2s" });
            await using var lb = started;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var inFlight = http.GetAsync(new Uri(listen, "/hang"));
            await hanging.Arrived.WaitAsync(Deadline);

            await lb.SignalAsync("TERM");
            var exitCode = await lb.WaitForExitAsync(ShortStop + Deadline);
            var client = await Record.ExceptionAsync(() => inFlight.WaitAsync(Deadline));

            Assert.True(exitCode == 0, $"exit code {exitCode}; stderr: {lb.StandardError}");
            Assert.Contains("Stopping: the 2 s drain ran out; 1 requests still in flight were cut", lb.StandardOutput);
            Assert.Empty(lb.StandardError); // no stack trace
            Assert.IsType<HttpRequestException>(client);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    // A backend handler that never answers (until the balancer gives up on it).
    sealed class HangingBackend
    {
        readonly TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Arrived => _arrived.Task;

        public async Task Handle(HttpContext context)
        {
            _arrived.TrySetResult();
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }
}
