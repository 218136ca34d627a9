using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Discovery;

// DNS discovery end to end: the real balancer, the real DnsClient, a real DNS server for the test
// and real backends on two loopback addresses of one port. Backends are resolved at startup;
// the fake clock drives the lookups after that (discovery.interval 10s).
public sealed class DiscoveryTests : IAsyncDisposable
{
    readonly TestDnsServer _dns = TestDnsServer.Start();
    readonly FakeTimeProvider _time = new();
    readonly List<IAsyncDisposable> _owned = [];

    async Task<(TestBackend A, TestBackend B)> BackendsAsync()
    {
        RequestDelegate echoHost = c => c.Response.WriteAsync($"{c.Connection.LocalIpAddress} {c.Request.Host}");
        var a = await TestBackend.StartAsync("a", handler: echoHost);
        var b = await TestBackend.StartAsync("b", a.Port, echoHost, address: IPAddress.Parse("127.0.0.2"));
        _owned.Add(a);
        _owned.Add(b);
        return (a, b);
    }

    async Task<Balancer> BalancerAsync(int port)
    {
        var config = Balancer.Config();
        config["backends"] = new JsonArray(new JsonObject { ["url"] = $"http://web.test:{port}", ["discover"] = "dns" });
        config["discovery"] = new JsonObject { ["interval"] = "10s", ["nameservers"] = new JsonArray(_dns.Nameserver) };
        var lb = await Balancer.StartAsync(config, _time);
        _owned.Insert(0, lb);
        return lb;
    }

    static async Task<JsonElement[]> BackendsInStatusAsync(Balancer lb) => [.. (await lb.StatusAsync()).GetProperty("backends").EnumerateArray()];

    static async Task<JsonElement[]> WaitForStatusAsync(Balancer lb, Func<JsonElement[], bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var backends = await BackendsInStatusAsync(lb);
            if (condition(backends)) return backends;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"/status never satisfied the condition; last: {string.Join(", ", backends)}");
            await Task.Yield();
        }
    }

    [Fact]
    public async Task Startup_EachAddressIsABackend_TrafficReachesBothWithTheHostName()
    {
        var (a, b) = await BackendsAsync();
        _dns.Set("web.test", "127.0.0.1", "127.0.0.2");
        var lb = await BalancerAsync(a.Port);

        var backends = await BackendsInStatusAsync(lb); // resolved before the listeners opened
        Assert.Equal([$"127.0.0.1:{a.Port}", $"127.0.0.2:{a.Port}"], backends.Select(x => x.GetProperty("address").GetString()));
        Assert.All(backends, x => Assert.Equal($"http://web.test:{a.Port}", x.GetProperty("url").GetString()));
        Assert.All(backends, x => Assert.Contains(x.GetProperty("state").GetString(), new[] { "unknown", "healthy" })); // the first probe round may have run
        Assert.All(backends, x => Assert.False(x.GetProperty("discovery").GetProperty("stale").GetBoolean()));

        var answers = new List<string>();
        for (var i = 0; i < 4; i++) answers.Add(await lb.Client.GetStringAsync("/"));
        Assert.Equal(2, answers.Count(x => x.StartsWith("127.0.0.1 ", StringComparison.Ordinal)));
        Assert.Equal(2, answers.Count(x => x.StartsWith("127.0.0.2 ", StringComparison.Ordinal)));
        Assert.Equal(2, a.Requests);
        Assert.Equal(2, b.Requests);
        // Connected to each address; the Host header is the client's, as for any backend (contract).
        Assert.All(answers, x => Assert.EndsWith($" {lb.Client.BaseAddress!.Authority}", x));

        var metrics = await lb.Admin.GetStringAsync("/metrics");
        Assert.Contains($"address=\"127.0.0.2:{a.Port}\"", metrics);
    }

    [Fact]
    public async Task Lookups_AddressAddedThenRemovedThenFailing_StatusFollowsAndKeepsTheLastSet()
    {
        var (a, _) = await BackendsAsync();
        _dns.Set("web.test", "127.0.0.1");
        var lb = await BalancerAsync(a.Port);
        Assert.Single(await BackendsInStatusAsync(lb));
        await GetAsync(lb, 1);

        _dns.Set("web.test", "127.0.0.1", "127.0.0.2");
        _time.Advance(TimeSpan.FromSeconds(10));
        await lb.Logs.WaitForAsync($"is now unknown: discovered at 127.0.0.2:{a.Port}");
        var two = await BackendsInStatusAsync(lb);
        Assert.Equal(2, two.Length);
        Assert.Equal(1, two[0].GetProperty("requests").GetInt64()); // the address that stayed kept its counters

        _dns.Set("web.test", "127.0.0.2");
        _time.Advance(TimeSpan.FromSeconds(10));
        await lb.Logs.WaitForAsync($"127.0.0.1:{a.Port} is no longer in DNS");
        var left = Assert.Single(await WaitForStatusAsync(lb, x => x.Length == 1));
        Assert.Equal($"127.0.0.2:{a.Port}", left.GetProperty("address").GetString());

        _dns.Set("web.test", new TestDnsServer.Zone([], Fail: true));
        _time.Advance(TimeSpan.FromSeconds(10));
        var stale = Assert.Single(await WaitForStatusAsync(lb, x => x.Length == 1 && x[0].GetProperty("discovery").GetProperty("stale").GetBoolean()));
        Assert.Equal($"127.0.0.2:{a.Port}", stale.GetProperty("address").GetString()); // the last set stays
        Assert.False(string.IsNullOrEmpty(stale.GetProperty("discovery").GetProperty("error").GetString()));
        Assert.Equal(left.GetProperty("state").GetString(), stale.GetProperty("state").GetString()); // and its state is untouched
        Assert.Single(await GetAsync(lb, 1)); // and it still takes traffic
    }

    static async Task<string[]> GetAsync(Balancer lb, int n)
    {
        var list = new List<string>();
        for (var i = 0; i < n; i++)
        {
            using var response = await lb.Client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            list.Add(await response.Content.ReadAsStringAsync());
        }
        return [.. list];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var o in _owned) await o.DisposeAsync();
        await _dns.DisposeAsync();
    }
}
