using Microsoft.Extensions.DependencyInjection;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Resilience;

// Reload: lb.json changes on disk while the balancer runs (the watcher polls every 500 ms).
// Each test awaits the log line an operator would see instead of sleeping.
public sealed class ReloadTests
{
    static Task<LogLine> ReloadedAsync(Balancer lb, int backends) =>
        lb.Logs.WaitForAsync($"Configuration reloaded: {backends} backends", TimeSpan.FromSeconds(5));

    static async Task<List<string>> GetManyAsync(Balancer lb, int count)
    {
        var bodies = new List<string>();
        for (var i = 0; i < count; i++) bodies.Add(await lb.Client.GetStringAsync("/"));
        return bodies;
    }

    [Fact]
    public async Task Reload_BackendAdded_StartsUnknownTakesTrafficAndStayingOneKeepsItsState()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        await lb.Logs.WaitForAsync(a.Now("healthy"));
        await GetManyAsync(lb, 3);
        await lb.WaitForStatusAsync(a, s => s.Requests() == 3);

        await lb.WriteConfigAsync(Balancer.Config(a, b));
        await ReloadedAsync(lb, 2);

        var added = await lb.RequiredStatusAsync(b);
        Assert.Equal("unknown", added.State());
        Assert.Contains(lb.Logs.Lines, l => l.Message.StartsWith(b.Now("unknown"), StringComparison.Ordinal));
        var staying = await lb.RequiredStatusAsync(a);
        Assert.Equal("healthy", staying.State());
        Assert.Equal(3, staying.Requests());
        var bodies = await GetManyAsync(lb, 4);
        Assert.Equal(2, bodies.Count(x => x == "backend-b"));
        Assert.Equal(2, b.Requests);
        Assert.Equal(5, (await lb.WaitForStatusAsync(a, s => s.Requests() == 5)).Requests());
    }

    [Fact]
    public async Task Reload_BackendRemoved_GetsNoNewRequestsAndItsSlowRequestCompletes()
    {
        var held = new HeldAnswer();
        await using var slow = await TestBackend.StartAsync("slow", handler: held.Handler);
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(slow, a)); // round-robin: slow first
        var inFlight = lb.Client.GetAsync("/");
        await held.Arrived.WaitAsync(TimeSpan.FromSeconds(10));

        await lb.WriteConfigAsync(Balancer.Config(a));
        await ReloadedAsync(lb, 1);

        Assert.Equal("draining", (await lb.RequiredStatusAsync(slow)).State());
        Assert.Equal(["backend-a", "backend-a", "backend-a", "backend-a"], await GetManyAsync(lb, 4));
        held.Release();
        using var response = await inFlight.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
        var removed = await lb.Logs.WaitForAsync($"Backend {slow.Url} removed");
        Assert.Equal(LogLevel.Information, removed.Level);
        Assert.Null(await lb.BackendStatusAsync(slow));
        Assert.Equal(1, slow.Requests);
    }

    [Fact]
    public async Task Reload_InvalidFile_OneErrorLoggedAndOldConfigurationServes()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        await File.WriteAllTextAsync(lb.ConfigPath, $$"""{ "backends": [ { "url": "{{b.Url}}" }, """);
        var error = await lb.Logs.WaitForAsync(l => l.Level >= LogLevel.Error, TimeSpan.FromSeconds(5));

        Assert.Contains(lb.ConfigPath, error.Message);
        Assert.Equal(["backend-a", "backend-a"], await GetManyAsync(lb, 2));
        // The watcher looks at the unchanged bad file again (twice a second); it says so only once.
        await Assert.ThrowsAsync<TimeoutException>(() =>
            lb.Logs.WaitForAsync(l => l.Level >= LogLevel.Error && !ReferenceEquals(l, error), TimeSpan.FromSeconds(1.2)));
        Assert.Equal([a.Url], (await lb.StatusAsync()).GetProperty("backends").EnumerateArray().Select(x => x.GetProperty("url").GetString()));

        await lb.WriteConfigAsync(Balancer.Config(a, b)); // fixed: applied as usual
        await ReloadedAsync(lb, 2);
        Assert.Contains("backend-b", await GetManyAsync(lb, 2));
        Assert.Single(lb.Logs.Lines, l => l.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task Reload_ListenChanged_WarnsKeepsOldPortAndAppliesTheRest()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var elsewhere = FreePort();
        var config = Balancer.Config(a, b);
        config["listen"] = $"http://127.0.0.1:{elsewhere}";

        await lb.WriteConfigAsync(config);
        await ReloadedAsync(lb, 2);

        var warning = Assert.Single(lb.Logs.Lines, l => l.Level == LogLevel.Warning);
        Assert.Contains("restart", warning.Message);
        Assert.Equal(["backend-a", "backend-b"], await GetManyAsync(lb, 2)); // old port, new backends
        // Not bound there: read from Kestrel itself (a TCP probe of the port could reach another
        // test's listener that got the same free port meanwhile).
        var addresses = lb.App.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses;
        Assert.DoesNotContain(addresses, address => new Uri(address).Port == elsewhere);
        Assert.Contains(addresses, address => new Uri(address).Port == lb.App.ClientUri().Port);
    }

    [Fact]
    public async Task Reload_FileReplacedByRename_PickedUp()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var temp = lb.ConfigPath + ".tmp";

        await File.WriteAllTextAsync(temp, Balancer.Config(b).ToJsonString());
        File.Move(temp, lb.ConfigPath, overwrite: true); // as editors and ConfigMaps do

        await ReloadedAsync(lb, 1);
        Assert.Equal(["backend-b", "backend-b"], await GetManyAsync(lb, 2));
    }

    [Fact]
    public async Task Reload_RetriesRaised_AppliesToTheNextRequest()
    {
        await using var reset = await TestBackend.StartAsync("reset", handler: context =>
        {
            context.Abort();
            return Task.CompletedTask;
        });
        await using var good = await TestBackend.StartAsync("good");
        var config = Balancer.Config(reset, good);
        config["retries"] = 0;
        config["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = 100 };
        await using var lb = await Balancer.StartAsync(config);
        Assert.Equal(HttpStatusCode.BadGateway, (await lb.Client.GetAsync("/")).StatusCode);
        Assert.Equal("backend-good", await lb.Client.GetStringAsync("/"));

        config["retries"] = 1;
        await lb.WriteConfigAsync(config);
        await ReloadedAsync(lb, 2);

        using var response = await lb.Client.GetAsync("/"); // reset again, now retried on good
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, reset.Requests);
        Assert.Equal(2, good.Requests);
    }

    [Fact]
    public async Task Reload_WhileClientsSendRequests_NoRequestFails()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b));
        var load = new Load(lb, clients: 4);

        await load.AfterMoreAsync(100);
        await lb.WriteConfigAsync(Balancer.Config(a, b, c));
        await ReloadedAsync(lb, 3);
        await load.AfterMoreAsync(100);
        var cAfterAdd = c.Requests;
        await lb.WriteConfigAsync(Balancer.Config(b, c));
        await ReloadedAsync(lb, 2);
        await lb.Logs.WaitForAsync($"Backend {a.Url} removed");
        var aAtRemoval = a.Requests;
        await load.AfterMoreAsync(100);
        await load.StopAsync();

        Assert.Empty(load.Failures);
        Assert.True(cAfterAdd > 0, "the added backend took traffic");
        Assert.Equal(aAtRemoval, a.Requests); // the removed backend got nothing new
    }

    [Fact]
    public async Task Reload_PoolChanged_RequestInFlightCompletesAndNewRequestsUseANewPool()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            if (context.Request.Path == "/slow")
            {
                arrived.TrySetResult();
                await release.Task;
            }
            await context.Response.WriteAsync(context.Request.Path == "/slow" ? "slow done" : "backend-a");
        });
        var config = Balancer.Config(a);
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync(a.Now("healthy")); // the startup probe has connected: only forwards from here
        var slow = lb.Client.GetAsync("/slow");
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("backend-a", await lb.Client.GetStringAsync("/")); // a second pooled connection, idle now
        var connections = a.Connections;

        config["pool"] = new JsonObject { ["idleTimeout"] = "10s" };
        await lb.WriteConfigAsync(config);
        var reloaded = await ReloadedAsync(lb, 1);

        Assert.Contains("changed: pool.idleTimeout 1m -> 10s", reloaded.Message);
        Assert.Equal("backend-a", await lb.Client.GetStringAsync("/"));
        Assert.Equal(connections + 1, a.Connections); // the new pool connects; the old pool's idle one is not used
        release.SetResult();
        using var response = await slow.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
        // The old pool is disposed with its last request, its two connections with it.
        await lb.WaitForStatusAsync(a, s => s.GetProperty("connections").GetProperty("open").GetInt32() == 1);
        Assert.Equal(3, (await lb.RequiredStatusAsync(a)).Requests());
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    // Clients sending GETs in a loop until stopped; counts what failed.
    sealed class Load
    {
        readonly Balancer _lb;
        readonly CancellationTokenSource _stop = new();
        readonly Task[] _clients;
        readonly List<(long Target, TaskCompletionSource Done)> _waiters = [];
        long _done;

        public ConcurrentQueue<string> Failures { get; } = new();

        public Load(Balancer lb, int clients)
        {
            _lb = lb;
            _clients = Enumerable.Range(0, clients).Select(_ => Task.Run(RunAsync)).ToArray();
        }

        async Task RunAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await _lb.Client.GetAsync("/");
                    var body = await response.Content.ReadAsStringAsync();
                    if (!response.IsSuccessStatusCode) Failures.Enqueue($"{(int)response.StatusCode} {body}");
                }
                catch (Exception e)
                {
                    Failures.Enqueue(e.ToString());
                }
                var done = Interlocked.Increment(ref _done);
                lock (_waiters)
                    for (var i = _waiters.Count - 1; i >= 0; i--)
                        if (done >= _waiters[i].Target)
                        {
                            _waiters[i].Done.TrySetResult();
                            _waiters.RemoveAt(i);
                        }
            }
        }

        /// <summary>Completes once this many more requests have finished.</summary>
        public Task AfterMoreAsync(int more)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_waiters) _waiters.Add((Interlocked.Read(ref _done) + more, done));
            return done.Task.WaitAsync(TimeSpan.FromSeconds(20));
        }

        public async Task StopAsync()
        {
            _stop.Cancel();
            await Task.WhenAll(_clients).WaitAsync(TimeSpan.FromSeconds(20));
        }
    }
}
