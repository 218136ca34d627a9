using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// limits.maxClientConnections: at the limit the balancer stops accepting (HAProxy's maxconn), so
// one more client waits in the kernel's accept queue and is served as soon as a connection
// closes; it is neither refused nor reset, and the admin listener is not counted.
public sealed class ClientLimitTests
{
    [Fact]
    public async Task ThirdConnectionOverALimitOfTwo_WaitsThenServedWhenOneCloses()
    {
        await using var t = await LimitedAsync("maxClientConnections", 2);
        var (a, config, lb) = (t.Backend, t.Config, t.Lb);
        var client = lb.App.ClientUri();
        var request = t.Request;

        await using var first = await RawConnection.OpenAsync(client);
        await using var second = await RawConnection.OpenAsync(client);
        Assert.Equal(200, (await first.SendAsync(request)).Status);
        Assert.Equal(200, (await second.SendAsync(request)).Status);
        await using var third = await RawConnection.OpenAsync(client); // the kernel completes the handshake
        var waiting = third.SendAsync(request);

        // Absence is the assertion: the third is not served while two are open.
        var servedEarly = await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(500))) == waiting;
        var admin = await lb.Admin.GetStringAsync("/healthz"); // the admin listener has its own budget
        await first.DisposeAsync();
        var response = await waiting;

        Assert.False(servedEarly, "a third connection was served while two were open");
        Assert.Equal("ok", admin.Trim());
        Assert.Equal(200, response.Status);
        Assert.Equal("backend-a", response.Body);
    }

    [Fact]
    public async Task ManyShortConnectionsOverALimitOfTwo_AllServed()
    {
        await using var t = await LimitedAsync("maxClientConnections", 2);
        var (a, config, lb) = (t.Backend, t.Config, t.Lb);
        var client = lb.App.ClientUri();

        // 20 clients at once, each one request with Connection: close: slots come back as each ends.
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
            RawHttp.SendAsync(client, $"GET / HTTP/1.1\r\nHost: {client.Authority}\r\nConnection: close\r\n")));

        Assert.All(responses, r => Assert.Equal(200, r.Status));
        Assert.Equal(20, a.Requests);
    }

    // Contract, Reload: every key but listen and admin applies without a restart, limits.* included.
    [Fact]
    public async Task Reload_LimitRaisedFromOneToTwo_WaitingSecondConnectionServedWhileFirstStaysOpen()
    {
        await using var t = await LimitedAsync("maxClientConnections", 1);
        var (a, config, lb) = (t.Backend, t.Config, t.Lb);
        var client = lb.App.ClientUri();
        var request = t.Request;

        await using var first = await RawConnection.OpenAsync(client);
        Assert.Equal(200, (await first.SendAsync(request)).Status);
        await using var second = await RawConnection.OpenAsync(client);
        var waiting = second.SendAsync(request);
        var servedEarly = await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(300))) == waiting;

        config["limits"]!["maxClientConnections"] = 2;
        await lb.WriteConfigAsync(config);
        var response = await waiting.WaitAsync(TimeSpan.FromSeconds(5)); // first is still open

        Assert.False(servedEarly, "a second connection was served over a limit of one");
        Assert.Equal(200, response.Status);
        Assert.Equal(200, (await first.SendAsync(request)).Status);
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.Contains("restart", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_LimitCutFromTwoToOne_OpenConnectionsKeptNewOneWaitsUntilBothClose()
    {
        await using var t = await LimitedAsync("maxClientConnections", 2);
        var (a, config, lb) = (t.Backend, t.Config, t.Lb);
        var client = lb.App.ClientUri();
        var request = t.Request;
        await using var first = await RawConnection.OpenAsync(client);
        await using var second = await RawConnection.OpenAsync(client);
        Assert.Equal(200, (await first.SendAsync(request)).Status);
        Assert.Equal(200, (await second.SendAsync(request)).Status);

        config["limits"]!["maxClientConnections"] = 1;
        await lb.WriteConfigAsync(config);
        await lb.Logs.WaitForAsync("Configuration reloaded", TimeSpan.FromSeconds(5));

        // The cut closes nothing: both open connections still work.
        Assert.Equal(200, (await first.SendAsync(request)).Status);
        Assert.Equal(200, (await second.SendAsync(request)).Status);
        await using var third = await RawConnection.OpenAsync(client);
        var waiting = third.SendAsync(request);
        await first.DisposeAsync(); // one closes: the cut takes its slot back, not the third
        var servedAfterOne = await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(300))) == waiting;
        await second.DisposeAsync(); // now one below the new limit
        var response = await waiting.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.False(servedAfterOne, "over a cut limit of one, a new connection was served while one was still open");
        Assert.Equal(200, response.Status);
    }

    [Fact]
    public async Task Reload_RequestHeadersTimeoutCutTo1s_NewSlowLorisConnectionDisconnected()
    {
        await using var t = await LimitedAsync("requestHeadersTimeout", "60s");
        var (a, config, lb) = (t.Backend, t.Config, t.Lb);
        config["limits"]!["requestHeadersTimeout"] = "1s";
        await lb.WriteConfigAsync(config);
        await lb.Logs.WaitForAsync("Configuration reloaded", TimeSpan.FromSeconds(5));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var loris = await Hostile.RawClient.ConnectAsync(lb.App.ClientUri());
        await loris.SendAsync("GET / HTTP/1.1\r\nHost: example.com\r\nX-Slow: a"); // headers never end
        var exchange = await loris.ReadUntilCloseAsync(TimeSpan.FromSeconds(10));

        // Kestrel checks on a 1 s heartbeat: closed after 1-2 s, far below the 60 s it started with.
        Assert.True(exchange.Closed && clock.Elapsed < TimeSpan.FromSeconds(5),
            $"after a reload to requestHeadersTimeout 1s, a connection with unfinished headers was not closed in 5 s: {exchange}");
        Assert.Equal(0, a.Requests);
    }

    // One backend and a balancer with one limits.* key set; disposed together.
    sealed record Limited(TestBackend Backend, System.Text.Json.Nodes.JsonObject Config, Balancer Lb) : IAsyncDisposable
    {
        public string Request => $"GET / HTTP/1.1\r\nHost: {Lb.App.ClientUri().Authority}\r\n";

        public async ValueTask DisposeAsync()
        {
            await Lb.DisposeAsync();
            await Backend.DisposeAsync();
        }
    }

    static async Task<Limited> LimitedAsync(string key, System.Text.Json.Nodes.JsonNode value)
    {
        var a = await TestBackend.StartAsync("a");
        var config = Balancer.Config(a);
        config["limits"] = new System.Text.Json.Nodes.JsonObject { [key] = value };
        return new Limited(a, config, await Balancer.StartAsync(config));
    }
}
