using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using LoadBalancer.Tests.Resilience;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Integration;

// Issue 17, what an operator reads remotely: request latency by backend (and "none" for the
// balancer's own answers), gauges that leave with a removed backend, a reload's result in
// /status and /metrics, and why a backend is in its state.
public sealed class OperatorVisibilityTests
{
    const string Duration = "loadbalancer_request_duration_seconds";

    static async Task<PrometheusText> MetricsAsync(Balancer lb) =>
        PrometheusText.Parse(await lb.Admin.GetStringAsync("/metrics"));

    /// <summary>Scrapes until the condition holds: a handler records its request, and the state
    /// task publishes its gauges, a moment after the client has its answer. Each scrape is a
    /// real round trip.</summary>
    static async Task<PrometheusText> WaitForMetricsAsync(Balancer lb, Func<PrometheusText, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var metrics = await MetricsAsync(lb);
            if (condition(metrics)) return metrics;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("/metrics never satisfied the condition; last:\n" + await lb.Admin.GetStringAsync("/metrics"));
            await Task.Yield();
        }
    }

    static async Task<JsonElement> WaitForStatusAsync(Balancer lb, Func<JsonElement, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var status = await lb.StatusAsync();
            if (condition(status)) return status;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"/status never satisfied the condition; last: {status}");
            await Task.Yield();
        }
    }

    static bool Has(PrometheusText metrics, string family, params (string Name, string Value)[] labels) =>
        metrics.Families.TryGetValue(family, out var f)
        && f.Samples.Any(s => labels.All(l => s.Labels.TryGetValue(l.Name, out var v) && v == l.Value));

    static double Bucket(PrometheusText metrics, string backend, string code, string le)
    {
        var family = metrics.Family(Duration);
        return family.Single(Duration + "_bucket", ("backend", backend), ("code", code), ("le", le)).Value;
    }

    // ---- item 2: loadbalancer_request_duration_seconds ---------------------------------------

    [Fact]
    public async Task RequestDuration_BackendAnswersAfter50ms_LandsInTheBucketAbove50ms()
    {
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            if (context.Request.Path == "/slow")
            {
                // At least 50 ms by the same clock the balancer uses (a timer may fire a little early).
                var waited = Stopwatch.StartNew();
                while (waited.Elapsed < TimeSpan.FromMilliseconds(50)) await Task.Delay(TimeSpan.FromMilliseconds(50) - waited.Elapsed);
                await context.Response.WriteAsync("slow");
            }
            else
            {
                context.Response.StatusCode = 404; // the warm-up (JIT, first connection): its own series (code 4xx)
                await context.Response.WriteAsync("warm");
            }
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        using (var warm = await lb.Client.GetAsync("/warm-up")) Assert.Equal(HttpStatusCode.NotFound, warm.StatusCode);

        Assert.Equal("slow", await lb.Client.GetStringAsync("/slow"));
        var metrics = await WaitForMetricsAsync(lb, m => Has(m, Duration, ("backend", a.Url), ("code", "2xx")));

        var family = metrics.Family(Duration);
        Assert.Equal("histogram", family.Type);
        Assert.Equal(1, family.Single(Duration + "_count", ("backend", a.Url), ("code", "2xx")).Value);
        Assert.Equal(0, Bucket(metrics, a.Url, "2xx", "0.05")); // not faster than the backend
        Assert.Equal(1, Bucket(metrics, a.Url, "2xx", "0.1"));
        Assert.InRange(family.Single(Duration + "_sum", ("backend", a.Url), ("code", "2xx")).Value, 0.05, 0.1);
        Assert.Equal(1, family.Single(Duration + "_count", ("backend", a.Url), ("code", "4xx")).Value);
        // Buckets resolve 1 ms to 30 s.
        var bounds = family.Samples.Where(s => s.Name == Duration + "_bucket" && s.Labels["code"] == "2xx")
            .Select(s => s.Labels["le"]).ToList();
        Assert.Equal("0.001", bounds.First());
        Assert.Contains("30", bounds);
    }

    [Fact]
    public async Task RequestDuration_NoHealthyBackend_The503CountedWithBackendNone()
    {
        // Unhealthy but still listening: a stopped backend's port is free, and the balancer's own
        // listener (port 0) could be given it, so that its probes of "down" came back to itself as
        // 503s counted here too (seen once: a count of 2).
        await using var down = await TestBackend.StartAsync("down");
        down.HealthStatus = StatusCodes.Status500InternalServerError;
        var config = Balancer.Config(down);
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync(down.Now("unhealthy"));

        using (var response = await lb.Client.GetAsync("/"))
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var metrics = await WaitForMetricsAsync(lb, m => Has(m, Duration, ("backend", "none")));

        var family = metrics.Family(Duration);
        Assert.Equal(1, family.Single(Duration + "_count", ("backend", "none"), ("code", "5xx")).Value);
        Assert.DoesNotContain(family.Samples, s => s.Labels["backend"] == down.Url); // no backend answered
    }

    // ---- item 3: a removed backend's gauges ---------------------------------------------------

    [Fact]
    public async Task Gauges_BackendRemovedByReload_GoneOnceDrainedWhileTheStayingOnesRemain()
    {
        var held = new HeldAnswer();
        await using var slow = await TestBackend.StartAsync("slow", handler: held.Handler);
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(slow, a)); // round-robin: slow first
        var inFlight = lb.Client.GetAsync("/");
        await held.Arrived.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("backend-a", await lb.Client.GetStringAsync("/")); // a gets a request and a pooled connection

        await lb.WriteConfigAsync(Balancer.Config(a));
        await lb.Logs.WaitForAsync("Configuration reloaded: 1 backends", TimeSpan.FromSeconds(5));

        // Draining: still there, in flight 1, no longer eligible.
        var draining = await WaitForMetricsAsync(lb, m => Has(m, "loadbalancer_backend_healthy", ("backend", slow.Url))
            && m.Family("loadbalancer_backend_healthy").Single("loadbalancer_backend_healthy", ("backend", slow.Url)).Value == 0);
        Assert.Equal(1, draining.Family("loadbalancer_in_flight").Single("loadbalancer_in_flight", ("backend", slow.Url)).Value);

        held.Release();
        using (var response = await inFlight.WaitAsync(TimeSpan.FromSeconds(10))) Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await lb.Logs.WaitForAsync($"Backend {slow.Url} removed");
        var drained = await WaitForMetricsAsync(lb, m => !Has(m, "loadbalancer_in_flight", ("backend", slow.Url)));

        foreach (var gauge in (string[])["loadbalancer_in_flight", "loadbalancer_backend_healthy", "loadbalancer_pool_connections_open"])
        {
            var family = drained.Family(gauge);
            Assert.Equal("gauge", family.Type);
            Assert.DoesNotContain(family.Samples, s => s.Labels["backend"] == slow.Url);
            Assert.Single(family.Samples, s => s.Labels["backend"] == a.Url);
        }
        Assert.Equal(1, drained.Family("loadbalancer_backend_healthy").Single("loadbalancer_backend_healthy", ("backend", a.Url)).Value);
        Assert.InRange(drained.Family("loadbalancer_pool_connections_open").Single("loadbalancer_pool_connections_open", ("backend", a.Url)).Value, 1, 2);
        // Counters stay, as Prometheus expects of a counter.
        Assert.Equal(1, drained.Family("loadbalancer_requests_total").Single("loadbalancer_requests_total", ("backend", slow.Url), ("code", "200")).Value);
    }

    // ---- item 4: a reload's result ------------------------------------------------------------

    [Fact]
    public async Task Reload_InvalidThenFixed_StatusConfigAndTheReloadCounterShowEach()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var started = DateTimeOffset.UtcNow;
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        var initial = (await lb.StatusAsync()).GetProperty("config");
        Assert.Equal(1, initial.GetProperty("generation").GetInt32());
        Assert.Equal(JsonValueKind.Null, initial.GetProperty("lastError").ValueKind);
        var loadedAt = initial.GetProperty("loadedAt").GetString()!;
        Assert.EndsWith("Z", loadedAt);
        Assert.InRange(DateTimeOffset.Parse(loadedAt, CultureInfo.InvariantCulture), started.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        var reloads = (await MetricsAsync(lb)).Family("loadbalancer_config_reloads_total");
        Assert.Equal("counter", reloads.Type);
        Assert.Equal(0, reloads.Single(reloads.Name, ("result", "applied")).Value);
        Assert.Equal(0, reloads.Single(reloads.Name, ("result", "rejected")).Value);

        var bad = Balancer.Config(a, b);
        bad["healthCheck"]!["interval"] = "soon";
        await lb.WriteConfigAsync(bad);
        var error = await lb.Logs.WaitForAsync(l => l.Level >= LogLevel.Error, TimeSpan.FromSeconds(5));
        var rejected = (await WaitForStatusAsync(lb, s => s.GetProperty("config").GetProperty("lastError").ValueKind == JsonValueKind.String))
            .GetProperty("config");

        var lastError = rejected.GetProperty("lastError").GetString()!;
        Assert.Contains(lb.ConfigPath, lastError);
        Assert.Contains("healthCheck.interval", lastError);
        Assert.EndsWith(lastError, error.Message); // the logged line, word for word
        Assert.DoesNotContain('\n', lastError);
        Assert.Equal(1, rejected.GetProperty("generation").GetInt32());
        Assert.Equal(loadedAt, rejected.GetProperty("loadedAt").GetString());
        reloads = (await MetricsAsync(lb)).Family("loadbalancer_config_reloads_total");
        Assert.Equal(1, reloads.Single(reloads.Name, ("result", "rejected")).Value);
        Assert.Equal(0, reloads.Single(reloads.Name, ("result", "applied")).Value);

        await lb.WriteConfigAsync(Balancer.Config(a, b)); // fixed
        await lb.Logs.WaitForAsync("Configuration reloaded: 2 backends", TimeSpan.FromSeconds(5));
        var applied = (await lb.StatusAsync()).GetProperty("config");

        Assert.Equal(2, applied.GetProperty("generation").GetInt32());
        Assert.Equal(JsonValueKind.Null, applied.GetProperty("lastError").ValueKind);
        Assert.True(DateTimeOffset.Parse(applied.GetProperty("loadedAt").GetString()!, CultureInfo.InvariantCulture)
            > DateTimeOffset.Parse(loadedAt, CultureInfo.InvariantCulture));
        reloads = (await MetricsAsync(lb)).Family("loadbalancer_config_reloads_total");
        Assert.Equal(1, reloads.Single(reloads.Name, ("result", "applied")).Value);
        Assert.Equal(1, reloads.Single(reloads.Name, ("result", "rejected")).Value);
    }

    // ---- item 6: why a backend is in its state ------------------------------------------------

    [Fact]
    public async Task Status_EjectedBy503s_StateReasonNamesTheFailedRequestsAndEjectedUntilIsAhead()
    {
        await using var bad = await TestBackend.StartAsync("bad", handler: context =>
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return Task.CompletedTask;
        });
        await using var good = await TestBackend.StartAsync("good");
        var config = Balancer.Config(bad, good);
        config["passiveHealth"] = new System.Text.Json.Nodes.JsonObject { ["consecutiveFailures"] = 3, ["ejectFor"] = "1m" };
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync(bad.Now("healthy")); // its probe passes: only traffic ejects it
        Assert.Equal("probe passed: 200 [healthCheck: first probe]", (await lb.RequiredStatusAsync(bad)).GetProperty("stateReason").GetString());
        Assert.Equal(JsonValueKind.Null, (await lb.RequiredStatusAsync(bad)).GetProperty("ejectedUntil").ValueKind);

        for (var i = 0; i < 5; i++) (await lb.Client.GetAsync("/")).Dispose(); // bad, good, bad, good, bad
        var logged = await lb.Logs.WaitForAsync(bad.Now("ejected"));
        var entry = await lb.RequiredStatusAsync(bad);

        Assert.Equal("ejected", entry.State());
        var reason = entry.GetProperty("stateReason").GetString()!;
        Assert.Contains("3 failed requests in a row", reason);
        Assert.Equal($"{bad.Now("ejected")}: {reason}", logged.Message); // the log line's reason, word for word
        var until = DateTimeOffset.Parse(entry.GetProperty("ejectedUntil").GetString()!, CultureInfo.InvariantCulture);
        Assert.InRange(until, DateTimeOffset.UtcNow.AddSeconds(30), DateTimeOffset.UtcNow.AddMinutes(1).AddSeconds(1));
        Assert.EndsWith("Z", entry.GetProperty("ejectedUntil").GetString());
        var staying = await lb.RequiredStatusAsync(good);
        Assert.Equal("healthy", staying.State());
        Assert.Equal(JsonValueKind.Null, staying.GetProperty("ejectedUntil").ValueKind);
    }

    // ---- many backends: every one keeps its own series ----------------------------------------

    [Fact]
    public async Task Metrics_2500Backends_EachHasItsOwnSeriesNoneInOverflow()
    {
        // OpenTelemetry's default cap is 2,000 series per metric: past it, new backends would all
        // land in one overflow series. 2,500 loopback addresses, nothing listening (probes refused).
        var config = Balancer.Config();
        config["backends"] = new System.Text.Json.Nodes.JsonArray(Enumerable.Range(0, 2500)
            .Select(i => (System.Text.Json.Nodes.JsonNode)new System.Text.Json.Nodes.JsonObject { ["url"] = $"http://127.0.{i / 250 + 10}.{i % 250 + 1}:9" }).ToArray());
        await using var lb = await Balancer.StartAsync(config);

        var metrics = await WaitForMetricsAsync(lb, m => m.Families.TryGetValue("loadbalancer_backend_healthy", out var f) && f.Samples.Count >= 2500);

        var healthy = metrics.Family("loadbalancer_backend_healthy");
        Assert.Equal(2500, healthy.Samples.Select(s => s.Labels["backend"]).Distinct().Count());
        Assert.DoesNotContain(metrics.Families.Values.SelectMany(f => f.Samples), s => s.Labels.ContainsKey("otel_metric_overflow"));
    }
}
