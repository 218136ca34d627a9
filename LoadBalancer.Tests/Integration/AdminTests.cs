using System.Globalization;
using System.Net;
using System.Text.Json;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// The admin listener as an operator uses it: /healthz, /status, /metrics, and kept apart from
// the client listener in both directions.
public sealed class AdminTests
{
    [Fact]
    public async Task Healthz_Get_Returns200Ok()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using var response = await lb.Admin.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", (await response.Content.ReadAsStringAsync()).Trim());
    }

    [Fact]
    public async Task Status_AfterTraffic_ShowsEveryBackendAsTheContractDescribes()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = Balancer.Config(a, b);
        var aUrl = a.Url + "/"; // as written in lb.json, trailing slash and all
        config["backends"]![0]!["url"] = aUrl;
        config["backends"]![0]!["weight"] = 3;
        var started = DateTimeOffset.UtcNow;
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync($"Backend {aUrl} is now healthy");
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now healthy");

        for (var i = 0; i < 8; i++) await lb.Client.GetStringAsync("/");
        var status = await lb.StatusAsync();

        Assert.Equal("round-robin", status.GetProperty("balancing").GetString());
        var backends = status.GetProperty("backends").EnumerateArray().ToArray();
        Assert.Equal(2, backends.Length);
        AssertBackend(backends[0], aUrl, weight: 3, requests: 6);
        AssertBackend(backends[1], b.Url, weight: 1, requests: 2);

        void AssertBackend(JsonElement e, string url, int weight, int requests)
        {
            Assert.Equal(url, e.GetProperty("url").GetString());
            Assert.Equal(weight, e.GetProperty("weight").GetInt32());
            Assert.Equal("healthy", e.GetProperty("state").GetString());
            Assert.Equal(0, e.GetProperty("inFlight").GetInt32());
            Assert.Equal(requests, e.GetProperty("requests").GetInt64());
            Assert.Equal(0, e.GetProperty("failures").GetInt64());
            var probe = e.GetProperty("lastProbe");
            var at = probe.GetProperty("at").GetString()!;
            Assert.EndsWith("Z", at);
            Assert.InRange(DateTimeOffset.Parse(at, CultureInfo.InvariantCulture), started.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
            Assert.Equal(200, probe.GetProperty("status").GetInt32());
            Assert.InRange(probe.GetProperty("latencyMs").GetDouble(), 0, 2000);
            Assert.Equal(JsonValueKind.Null, probe.GetProperty("error").ValueKind);
            Assert.InRange(e.GetProperty("connections").GetProperty("open").GetInt32(), 1, requests); // kept alive
        }
    }

    [Fact]
    public async Task Status_RequestInFlightAndBackendFailure_Counted()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            if (context.Request.Path == "/fail")
            {
                context.Response.StatusCode = 503;
                return;
            }
            arrived.TrySetResult();
            await release.Task;
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using (var failed = await lb.Client.GetAsync("/fail")) Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        var slow = lb.Client.GetAsync("/slow");
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var during = (await lb.StatusAsync()).GetProperty("backends")[0];
        release.SetResult();
        using (var done = await slow.WaitAsync(TimeSpan.FromSeconds(10))) Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        var after = (await lb.StatusAsync()).GetProperty("backends")[0];

        Assert.Equal(1, during.GetProperty("inFlight").GetInt32());
        Assert.Equal(1, during.GetProperty("failures").GetInt64()); // a 503 from the backend is a passive failure
        Assert.Equal(0, after.GetProperty("inFlight").GetInt32());
        Assert.Equal(2, after.GetProperty("requests").GetInt64());
    }

    [Fact]
    public async Task Status_BackendRefusesProbes_UnhealthyWithProbeError()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await b.StopAsync();
        var config = Balancer.Config(a, b);
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now unhealthy");

        var down = (await lb.StatusAsync()).GetProperty("backends")[1];

        Assert.Equal(b.Url, down.GetProperty("url").GetString());
        Assert.Equal("unhealthy", down.GetProperty("state").GetString());
        var probe = down.GetProperty("lastProbe");
        Assert.Equal(JsonValueKind.Null, probe.GetProperty("status").ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(probe.GetProperty("error").GetString()));
        Assert.Equal(JsonValueKind.Number, probe.GetProperty("latencyMs").ValueKind);
    }

    [Fact]
    public async Task Metrics_AfterTraffic_PrometheusTextWithTheContractSeries()
    {
        RequestDelegate notFoundOnMissing = context =>
        {
            context.Response.StatusCode = context.Request.Path == "/missing" ? 404 : 200;
            return Task.CompletedTask;
        };
        await using var a = await TestBackend.StartAsync("a", handler: notFoundOnMissing);
        await using var b = await TestBackend.StartAsync("b", handler: notFoundOnMissing);
        await using var down = await TestBackend.StartAsync("down");
        await down.StopAsync();
        var config = Balancer.Config(a, b, down);
        var aUrl = a.Url + "/"; // the label is the URL as written in lb.json
        config["backends"]![0]!["url"] = aUrl;
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync($"Backend {down.Url} is now unhealthy");
        await lb.Logs.WaitForAsync($"Backend {aUrl} is now healthy");
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now healthy");

        for (var i = 0; i < 4; i++) await lb.Client.GetAsync("/");
        using (var missing = await lb.Client.GetAsync("/missing"))
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode); // round-robin: a b a b, then this one on a
        using var response = await lb.Admin.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();
        var metrics = PrometheusText.Parse(text);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());

        var requests = RequestsFamily(metrics);
        Assert.Equal(5, requests.Samples.Sum(s => s.Value));
        Assert.Equal(2, requests.Single(requests.Name, ("backend", aUrl), ("code", "200")).Value);
        Assert.Equal(1, requests.Single(requests.Name, ("backend", aUrl), ("code", "404")).Value);
        Assert.Equal(2, requests.Single(requests.Name, ("backend", b.Url), ("code", "200")).Value);

        var inFlight = metrics.Family("loadbalancer_in_flight");
        foreach (var url in (string[])[aUrl, b.Url])
            Assert.Equal(0, inFlight.Single(inFlight.Name, ("backend", url)).Value);

        var healthy = metrics.Family("loadbalancer_backend_healthy");
        Assert.Equal(1, healthy.Single(healthy.Name, ("backend", aUrl)).Value);
        Assert.Equal(1, healthy.Single(healthy.Name, ("backend", b.Url)).Value);
        Assert.Equal(0, healthy.Single(healthy.Name, ("backend", down.Url)).Value);

        var probes = metrics.Family("loadbalancer_probe_latency_seconds");
        Assert.Equal("histogram", probes.Type);
        foreach (var url in (string[])[aUrl, b.Url, down.Url])
            Assert.True(probes.Single(probes.Name + "_count", ("backend", url)).Value >= 1, url);

        var connections = metrics.Family("loadbalancer_pool_connections_open");
        Assert.InRange(connections.Single(connections.Name, ("backend", aUrl)).Value, 1, 3);
        Assert.InRange(connections.Single(connections.Name, ("backend", b.Url)).Value, 1, 3);

        // Every per-backend series is labelled with a URL from lb.json.
        var urls = new[] { aUrl, b.Url, down.Url };
        foreach (var family in new[] { requests, inFlight, healthy, probes, connections })
            Assert.All(family.Samples, s => Assert.Contains(s.Labels["backend"], urls));
    }

    // A Prometheus counter, so rate() and the _total convention work as users expect.
    static MetricFamily RequestsFamily(PrometheusText metrics)
    {
        var family = metrics.Family("loadbalancer_requests_total");
        Assert.Equal("counter", family.Type);
        return family;
    }

    [Fact]
    public async Task AdminListener_AnyOtherPath_NotForwardedToBackends()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using var other = await lb.Admin.GetAsync("/api/users");
        using var post = await lb.Admin.PostAsync("/status", new StringContent("x"));

        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.NotEqual("backend-a", await other.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal(0, a.Requests);
    }

    [Theory]
    [InlineData("/status")]
    [InlineData("/healthz")]
    [InlineData("/metrics")]
    public async Task ClientListener_AdminPaths_ForwardedToBackend(string path)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        var body = await lb.Client.GetStringAsync(path);

        Assert.Equal("backend-a", body);
        Assert.Equal(1, a.Requests);
    }
}
