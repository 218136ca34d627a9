using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// Admission over real sockets (contract, "Admission"): a backend never sees more than its limit,
// the queue's 503s with their bodies and Retry-After, a queued client that leaves takes nothing,
// the retry budget, and /status and /metrics showing it all. Hostile: a flood of clients is
// held to queue.size waiters, and waiters do not stall the state task's other messages.
public sealed class AdmissionTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    // Counts its own concurrent requests and remembers the most it ever had.
    sealed class Counting
    {
        int _now, _max;
        public int Max => Volatile.Read(ref _max);

        public async Task Handler(HttpContext context)
        {
            var now = Interlocked.Increment(ref _now);
            for (var seen = Max; now > seen; seen = Max) Interlocked.CompareExchange(ref _max, now, seen);
            try
            {
                await Task.Delay(5); // the work: holds its slot for a while
                await context.Response.WriteAsync("counted");
            }
            finally
            {
                Interlocked.Decrement(ref _now);
            }
        }
    }

    static JsonObject Limited(int limit, params TestBackend[] backends)
    {
        var config = Balancer.Config(backends);
        config["limits"] = new JsonObject { ["maxInFlightPerBackend"] = limit };
        return config;
    }

    static async Task<JsonElement> WaitForStatusAsync(Balancer lb, Func<JsonElement, bool> done)
    {
        var stopAt = Stopwatch.GetTimestamp() + (long)(Deadline.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var status = await lb.StatusAsync();
            if (done(status)) return status;
            Assert.True(Stopwatch.GetTimestamp() < stopAt, $"/status never got there: {status}");
            await Task.Yield();
        }
    }

    static int QueueLength(JsonElement status) => status.GetProperty("queue").GetProperty("length").GetInt32();

    [Fact]
    public async Task Get_FiftyConcurrentClients_NoBackendEverSeesMoreThanItsLimit()
    {
        var (countA, countB) = (new Counting(), new Counting());
        await using var a = await TestBackend.StartAsync("a", handler: countA.Handler);
        await using var b = await TestBackend.StartAsync("b", handler: countB.Handler);
        var config = Limited(3, a, b);
        config["backends"]![1]!["maxInFlight"] = 2;
        await using var lb = await Balancer.StartAsync(config);

        var statuses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            var codes = new List<HttpStatusCode>();
            for (var i = 0; i < 4; i++) codes.Add((await lb.Client.GetAsync("/")).StatusCode);
            return codes;
        }));

        Assert.All(statuses.SelectMany(s => s), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.InRange(countA.Max, 1, 3);
        Assert.InRange(countB.Max, 1, 2);
        Assert.Equal(200, a.Requests + b.Requests);
    }

    [Fact]
    public async Task Get_QueuedLongerThanQueueTimeout_503QueueTimeoutOnTime()
    {
        var held = new HeldAnswer();
        await using var backend = await TestBackend.StartAsync("held", handler: held.Handler);
        var config = Limited(1, backend);
        config["queue"] = new JsonObject { ["timeout"] = "400ms" };
        await using var lb = await Balancer.StartAsync(config);
        var first = lb.Client.GetAsync("/");
        await held.Arrived;

        var clock = Stopwatch.StartNew();
        using var response = await lb.Client.GetAsync("/");
        var elapsed = clock.Elapsed;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("queue timeout\n", await response.Content.ReadAsStringAsync());
        Assert.True(response.Headers.RetryAfter is not null, "no Retry-After");
        Assert.InRange(elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(500));
        held.Release();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        var metrics = PrometheusText.Parse(await lb.Admin.GetStringAsync("/metrics"));
        Assert.Equal(1, metrics.Family("loadbalancer_queue_rejected_total").Single("loadbalancer_queue_rejected_total", ("reason", "timeout")).Value);
        Assert.Equal(1, metrics.Family("loadbalancer_queue_wait_seconds").Single("loadbalancer_queue_wait_seconds_count").Value);
    }

    [Fact]
    public async Task Get_QueueFull_503QueueFullAtOnceAndStatusAndMetricsShowTheQueue()
    {
        var held = new HeldAnswer();
        await using var backend = await TestBackend.StartAsync("held", handler: held.Handler);
        var config = Limited(1, backend);
        config["queue"] = new JsonObject { ["size"] = 1, ["timeout"] = "10s" };
        await using var lb = await Balancer.StartAsync(config);
        var first = lb.Client.GetAsync("/");
        await held.Arrived;
        var queued = lb.Client.GetAsync("/");
        var status = await WaitForStatusAsync(lb, s => QueueLength(s) == 1);

        using var refused = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("queue full\n", await refused.Content.ReadAsStringAsync());
        Assert.True(refused.Headers.RetryAfter is not null, "no Retry-After");
        var entry = status.GetProperty("backends")[0];
        Assert.Equal(1, entry.GetProperty("maxInFlight").GetInt32());
        Assert.Equal(1, entry.GetProperty("effectiveWeight").GetDouble());
        Assert.Equal(1, entry.GetProperty("inFlight").GetInt32());
        var metrics = PrometheusText.Parse(await lb.Admin.GetStringAsync("/metrics"));
        Assert.Equal(1, metrics.Family("loadbalancer_queue_length").Single("loadbalancer_queue_length").Value);
        Assert.Equal(1, metrics.Family("loadbalancer_queue_rejected_total").Single("loadbalancer_queue_rejected_total", ("reason", "full")).Value);
        Assert.Equal(0, metrics.Family("loadbalancer_queue_rejected_total").Single("loadbalancer_queue_rejected_total", ("reason", "timeout")).Value);

        held.Release();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await queued).StatusCode); // the freed slot went to the waiter
    }

    [Fact]
    public async Task Get_QueuedClientDisconnects_LeavesTheQueueAndFreesNothingItNeverHad()
    {
        var held = new HeldAnswer();
        await using var backend = await TestBackend.StartAsync("held", handler: held.Handler);
        await using var lb = await Balancer.StartAsync(Limited(1, backend));
        var first = lb.Client.GetAsync("/");
        await held.Arrived;
        using var leaving = new CancellationTokenSource();
        var queued = lb.Client.GetAsync("/", leaving.Token);
        await WaitForStatusAsync(lb, s => QueueLength(s) == 1);

        leaving.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        var status = await WaitForStatusAsync(lb, s => QueueLength(s) == 0);

        Assert.Equal(1, status.GetProperty("backends")[0].GetProperty("inFlight").GetInt32()); // still only the held one
        Assert.Equal(1, backend.Requests);
        held.Release();
        Assert.Equal(HttpStatusCode.OK, (await first).StatusCode);
        await WaitForStatusAsync(lb, s => s.GetProperty("backends")[0].GetProperty("inFlight").GetInt32() == 0);
        Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/")).StatusCode);
        Assert.Equal(2, backend.Requests); // the one that left never reached it
    }

    [Fact]
    public async Task Get_RetryOverTheBudget_EndsAs502AndIsCounted()
    {
        var dead = await TestBackend.StartAsync("dead");
        await dead.StopAsync(); // refuses connections
        await using var live = await TestBackend.StartAsync("live");
        var config = Balancer.Config(dead, live);
        config["retryBudget"] = new JsonObject { ["percent"] = 0, ["minPerSecond"] = 0 };
        config["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = 1000 };
        await using var lb = await Balancer.StartAsync(config);

        var codes = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++) codes.Add((await lb.Client.GetAsync("/")).StatusCode);

        // Round-robin: every other request starts on the dead backend, and its retry is refused.
        Assert.Equal([HttpStatusCode.BadGateway, HttpStatusCode.OK, HttpStatusCode.BadGateway, HttpStatusCode.OK], codes);
        var metrics = PrometheusText.Parse(await lb.Admin.GetStringAsync("/metrics"));
        Assert.Equal(2, metrics.Family("loadbalancer_retries_denied_total").Single("loadbalancer_retries_denied_total").Value);
        await lb.Logs.WaitForAsync("Retry budget spent");
    }

    [Fact]
    public async Task Get_FloodOfClients_QueueHoldsQueueSizeAndAReloadStillDrainsIt()
    {
        var held = new HeldAnswer();
        await using var slow = await TestBackend.StartAsync("held", handler: held.Handler);
        await using var spare = await TestBackend.StartAsync("spare");
        var config = Limited(1, slow);
        config["queue"] = new JsonObject { ["size"] = 10, ["timeout"] = "30s" };
        await using var lb = await Balancer.StartAsync(config);
        var first = lb.Client.GetAsync("/");
        await held.Arrived;

        using var flood = new HttpClient { BaseAddress = lb.Client.BaseAddress };
        var all = Enumerable.Range(0, 100).Select(_ => flood.GetAsync("/")).ToArray();
        // 90 are refused at once; 10 wait. Nothing grows past queue.size.
        await WaitForStatusAsync(lb, s => QueueLength(s) == 10 && all.Count(t => t.IsCompleted) == 90);
        Assert.All(all.Where(t => t.IsCompleted), t => Assert.Equal(HttpStatusCode.ServiceUnavailable, t.Result.StatusCode));
        Assert.Equal(10, QueueLength(await lb.StatusAsync()));

        // The state task still takes every other message: a reload adds a backend, which takes the waiters.
        config["backends"]!.AsArray().Add(new JsonObject { ["url"] = spare.Url });
        await lb.WriteConfigAsync(config);
        var served = await Task.WhenAll(all.Where(t => !t.IsCompleted)).WaitAsync(Deadline);
        Assert.Equal(10, served.Length);
        Assert.All(served, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(10, spare.Requests);
        held.Release();
        await first;
    }

    [Fact]
    public async Task AccessLog_QueuedThenServedAndQueueTimeout_QueueMsAndTerminationQueue()
    {
        var held = new HeldAnswer();
        await using var backend = await TestBackend.StartAsync("held", handler: held.Handler);
        var config = Limited(1, backend);
        config["queue"] = new JsonObject { ["timeout"] = "300ms" };
        config["accessLog"] = new JsonObject { ["path"] = "access.log", ["format"] = "json" };
        await using var lb = await Balancer.StartAsync(config);
        var path = Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "access.log");
        var first = lb.Client.GetAsync("/first");
        await held.Arrived;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await lb.Client.GetAsync("/late")).StatusCode);
        held.Release();
        await first;

        var lines = (await AccessLogFile.WaitForCountAsync(path, 2)).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        var late = lines.Single(l => l.GetProperty("target").GetString() == "/late");
        Assert.Equal("queue", late.GetProperty("termination").GetString());
        Assert.InRange(late.GetProperty("queueMs").GetDouble(), 300, 1000);
        var served = lines.Single(l => l.GetProperty("target").GetString() == "/first");
        Assert.Equal("ok", served.GetProperty("termination").GetString());
        Assert.Equal(0, served.GetProperty("queueMs").GetDouble());
    }

    [Fact]
    public async Task AccessLog_RetryRefusedByTheBudget_TerminationBudget()
    {
        var dead = await TestBackend.StartAsync("dead");
        await dead.StopAsync();
        await using var live = await TestBackend.StartAsync("live");
        var config = Balancer.Config(dead, live);
        config["retryBudget"] = new JsonObject { ["percent"] = 0, ["minPerSecond"] = 0 };
        config["accessLog"] = new JsonObject { ["path"] = "access.log", ["format"] = "json" };
        await using var lb = await Balancer.StartAsync(config);

        Assert.Equal(HttpStatusCode.BadGateway, (await lb.Client.GetAsync("/")).StatusCode); // round-robin: the dead one first

        var line = JsonDocument.Parse((await AccessLogFile.WaitForCountAsync(Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "access.log"), 1)).Single()).RootElement;
        Assert.Equal("budget", line.GetProperty("termination").GetString());
        Assert.Equal(1, line.GetProperty("attempts").GetArrayLength());
    }
}
