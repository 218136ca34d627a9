using System.Net;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Integration;

// Which backend answers, as a client sees it through real sockets: the policies, health checks
// taking a backend out and bringing it back, and the answer when no backend is left.
public sealed class DistributionTests
{
    static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    [Fact]
    public async Task RoundRobin_ThreeEqualBackends_RotatesEvenly()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b, c));

        var names = await SendAsync(lb, 30);

        Assert.Equal(Enumerable.Repeat<string[]>(["a", "b", "c"], 10).SelectMany(x => x), names);
        Assert.Equal([10, 10, 10], new[] { a.Requests, b.Requests, c.Requests });
    }

    [Fact]
    public async Task RoundRobin_Weights511_FollowsNginxSmoothSequence()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        var config = Balancer.Config(a, b, c);
        config["backends"]![0]!["weight"] = 5;

        await using var lb = await Balancer.StartAsync(config);
        var names = await SendAsync(lb, 14);

        Assert.Equal("a a b a c a a a a b a c a a".Split(' '), names);
    }

    [Fact]
    public async Task RoundRobin_OneOfThreeFailsProbes_OtherTwoAlternate()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        b.HealthStatus = 500;
        var time = new FakeClock();
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b, c), time); // unhealthyThreshold 2

        await ProbeRoundsAsync(lb, time, rounds: 3, a, b, c); // down after the second; the third changes nothing
        var names = await SendAsync(lb, 20);

        Assert.Equal(Enumerable.Repeat<string[]>(["a", "c"], 10).SelectMany(x => x).Order(), names.Order());
        Assert.All(names.Zip(names.Skip(1)), pair => Assert.NotEqual(pair.First, pair.Second)); // never a run on one backend
        Assert.Equal(0, b.Requests);
        var changes = lb.Logs.Lines.Where(l => l.Message.StartsWith($"Backend {b.Url} is now unhealthy", StringComparison.Ordinal)).ToList();
        Assert.Single(changes); // logged once, not once per failed probe
        Assert.Equal(LogLevel.Information, changes[0].Level);
    }

    [Fact]
    public async Task HealthCheck_StoppedBackendRestarts_GetsTrafficAfterHealthyThreshold()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = Balancer.Config(a, b);
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        config["healthCheck"]!["healthyThreshold"] = 2;
        await b.StopAsync();
        var time = new FakeClock();
        await using var lb = await Balancer.StartAsync(config, time);
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now unhealthy");

        await b.RestartAsync();
        await ProbeRoundsAsync(lb, time, rounds: 2, a, b); // one passed probe: still below healthyThreshold
        var whileBelowThreshold = await SendAsync(lb, 4);
        await ProbeRoundsAsync(lb, time, rounds: 3, a, b); // the second passed probe
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now healthy");
        var afterRecovery = await SendAsync(lb, 20);

        Assert.Equal(["a", "a", "a", "a"], whileBelowThreshold);
        Assert.InRange(afterRecovery.Count(n => n == "b"), 9, 11);
        Assert.InRange(afterRecovery.Count(n => n == "a"), 9, 11);
    }

    [Fact]
    public async Task HealthCheck_ProbesPassAgain_BackendGetsTrafficAgain()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        var config = Balancer.Config(a, b);
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        config["healthCheck"]!["healthyThreshold"] = 1;
        b.HealthStatus = 503;
        var time = new FakeClock();
        await using var lb = await Balancer.StartAsync(config, time);
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now unhealthy");
        var whileDown = await SendAsync(lb, 4);

        b.HealthStatus = 200;
        await ProbeRoundsAsync(lb, time, rounds: 2, a, b);
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now healthy");
        var afterRecovery = await SendAsync(lb, 4);

        Assert.Equal(["a", "a", "a", "a"], whileDown);
        Assert.Equal(2, afterRecovery.Count(n => n == "b"));
    }

    [Fact]
    public async Task Get_AllBackendsUnhealthy_Returns503NoHealthyBackendsWithRetryAfter()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        a.HealthStatus = 500;
        b.HealthStatus = 500;
        var config = Balancer.Config(a, b);
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync($"Backend {a.Url} is now unhealthy");
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now unhealthy");

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("no healthy backends", (await response.Content.ReadAsStringAsync()).Trim());
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(0, a.Requests + b.Requests);
    }

    [Theory]
    [InlineData("least-connections")]
    [InlineData("power-of-two")]
    [InlineData("random")]
    public async Task Policy_SequentialRequests_ReachEveryBackend(string policy)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        var config = Balancer.Config(a, b, c);
        config["balancing"] = policy;
        await using var lb = await Balancer.StartAsync(config);

        var names = await SendAsync(lb, 60);

        // Chance that a fair random pick misses one of three backends in 60 tries: 3 * (2/3)^60 < 1e-10.
        Assert.All(new[] { a, b, c }, backend => Assert.Contains(backend.Name, names));
        Assert.Equal(60, a.Requests + b.Requests + c.Requests);
    }

    [Fact]
    public async Task LeastConnections_RequestsHeldOpen_GoToFewestInFlightPerWeight()
    {
        var arrived = Channel.CreateUnbounded<string>();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        RequestDelegate Hold(string name) => async context =>
        {
            arrived.Writer.TryWrite(name);
            await release.Task;
            await context.Response.WriteAsync(name);
        };
        await using var a = await TestBackend.StartAsync("a", handler: Hold("a"));
        await using var b = await TestBackend.StartAsync("b", handler: Hold("b"));
        await using var c = await TestBackend.StartAsync("c", handler: Hold("c"));
        var config = Balancer.Config(a, b, c);
        config["balancing"] = "least-connections";
        config["backends"]![0]!["weight"] = 2;
        await using var lb = await Balancer.StartAsync(config);

        // One at a time, each held open at its backend before the next is sent.
        var pending = new List<Task<HttpResponseMessage>>();
        var landed = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            pending.Add(lb.Client.GetAsync("/"));
            landed.Add(await arrived.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        }
        release.SetResult();
        foreach (var response in await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(10)))
            using (response) Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        Assert.Equal(4, landed.Count(n => n == "a")); // weight 2: twice the in-flight of b and c
        Assert.Equal(2, landed.Count(n => n == "b"));
        Assert.Equal(2, landed.Count(n => n == "c"));
    }

    static async Task<string[]> SendAsync(Balancer lb, int count)
    {
        var names = new string[count];
        for (var i = 0; i < count; i++)
        {
            var body = await lb.Client.GetStringAsync("/");
            Assert.StartsWith("backend-", body);
            names[i] = body["backend-".Length..];
        }
        return names;
    }

    // Runs probe rounds on the fake clock until round number `rounds` is in: the first round runs
    // at startup, each later one on the next tick. Waits for every backend's result of a round
    // before the next tick, since the ticker drops a tick the health checker is not ready for.
    static async Task ProbeRoundsAsync(Balancer lb, FakeClock time, int rounds, params TestBackend[] backends)
    {
        await time.PeriodicTimerCreatedAsync(Interval);
        for (var round = 1; round <= rounds; round++)
        {
            var done = true;
            foreach (var backend in backends)
                done &= lb.Logs.Lines.Count(l => l.Message.StartsWith($"Probe {backend.Url}:", StringComparison.Ordinal)) >= round;
            if (done) continue;
            if (round > 1) time.Advance(Interval);
            foreach (var backend in backends)
                await lb.Logs.WaitForCountAsync($"Probe {backend.Url}:", round);
        }
    }
}
