using System.Net;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Resilience;

// Health, passive: real requests that fail eject a backend for ejectFor, even though its
// health check still passes; then it is back.
public sealed class EjectionTests
{
    // 503 on real traffic while Failing, but /healthcheck stays 200 (TestBackend answers it).
    sealed class Flaky
    {
        volatile bool _failing = true;
        public bool Failing { get => _failing; set => _failing = value; }

        public RequestDelegate Handler(string name) => async context =>
        {
            if (Failing) context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            await context.Response.WriteAsync($"backend-{name}");
        };
    }

    static JsonObject Passive(JsonObject config, int failures, string ejectFor)
    {
        config["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = failures, ["ejectFor"] = ejectFor };
        return config;
    }

    [Fact]
    public async Task Get_Backend503sOnTraffic_EjectedGetsNoTrafficThenBack()
    {
        var flaky = new Flaky();
        await using var bad = await TestBackend.StartAsync("bad", handler: flaky.Handler("bad"));
        await using var good = await TestBackend.StartAsync("good");
        // ejectFor leaves room for a few requests while ejected, even on a busy machine.
        await using var lb = await Balancer.StartAsync(Passive(Balancer.Config(bad, good), failures: 3, ejectFor: "1s"));
        await lb.Logs.WaitForAsync(bad.Now("healthy")); // the startup probe passes: only traffic can eject it

        var codes = new List<int>();
        for (var i = 0; i < 5; i++) codes.Add((int)(await lb.Client.GetAsync("/")).StatusCode); // bad, good, bad, good, bad

        Assert.Equal([503, 200, 503, 200, 503], codes);
        var ejected = await lb.Logs.WaitForAsync(bad.Now("ejected"));
        Assert.Equal(LogLevel.Information, ejected.Level);
        Assert.Equal("ejected", (await lb.RequiredStatusAsync(bad)).State());
        var badBefore = bad.Requests;
        for (var i = 0; i < 4; i++) Assert.Equal("backend-good", await lb.Client.GetStringAsync("/"));
        Assert.Equal(badBefore, bad.Requests);

        flaky.Failing = false;
        var back = await lb.Logs.WaitForAsync(l => l.Message.StartsWith(bad.Now(""), StringComparison.Ordinal)
            && l.Message.Contains("ejection ended", StringComparison.Ordinal));
        Assert.Equal(bad.Now("healthy") + ": ejection ended [passiveHealth.ejectFor]", back.Message);
        Assert.Equal("healthy", (await lb.RequiredStatusAsync(bad)).State());
        var bodies = new List<string>();
        for (var i = 0; i < 4; i++) bodies.Add(await lb.Client.GetStringAsync("/"));
        Assert.Equal(2, bodies.Count(b => b == "backend-bad"));
        Assert.Equal(badBefore + 2, bad.Requests);
        Assert.Single(lb.Logs.Lines, l => l.Message.StartsWith(bad.Now("ejected"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Get_OnlyBackendEjected_503NoHealthyBackendsWithRetryAfter()
    {
        var flaky = new Flaky();
        await using var bad = await TestBackend.StartAsync("bad", handler: flaky.Handler("bad"));
        await using var lb = await Balancer.StartAsync(Passive(Balancer.Config(bad), failures: 2, ejectFor: "1m"));

        for (var i = 0; i < 2; i++) Assert.Equal(HttpStatusCode.ServiceUnavailable, (await lb.Client.GetAsync("/")).StatusCode);
        await lb.Logs.WaitForAsync(bad.Now("ejected"));
        flaky.Failing = false; // it would answer now, but it is ejected
        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("no healthy backends", (await response.Content.ReadAsStringAsync()).Trim());
        Assert.True(response.Headers.RetryAfter is not null, "Retry-After is set");
        Assert.Equal(2, bad.Requests);
    }

    [Fact]
    public async Task Get_FailuresInterruptedBySuccess_NotEjected()
    {
        var codes = new Queue<int>([503, 503, 200, 502, 504, 200]);
        await using var backend = await TestBackend.StartAsync("a", handler: context =>
        {
            lock (codes) context.Response.StatusCode = codes.Dequeue();
            return Task.CompletedTask;
        });
        await using var lb = await Balancer.StartAsync(Passive(Balancer.Config(backend), failures: 3, ejectFor: "1m"));

        var seen = new List<int>();
        for (var i = 0; i < 6; i++) seen.Add((int)(await lb.Client.GetAsync("/")).StatusCode);

        Assert.Equal([503, 503, 200, 502, 504, 200], seen); // passed through, each exactly once
        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0 && s.Requests() == 6);
        Assert.Equal(4, status.Failures());
        Assert.NotEqual("ejected", status.State());
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.StartsWith(backend.Now("ejected"), StringComparison.Ordinal));
    }
}
