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
        await using var a = await TestBackend.StartAsync("a");
        var config = Balancer.Config(a);
        config["limits"] = new System.Text.Json.Nodes.JsonObject { ["maxClientConnections"] = 2 };
        await using var lb = await Balancer.StartAsync(config);
        var client = lb.App.ClientUri();
        var request = $"GET / HTTP/1.1\r\nHost: {client.Authority}\r\n";

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
        await using var a = await TestBackend.StartAsync("a");
        var config = Balancer.Config(a);
        config["limits"] = new System.Text.Json.Nodes.JsonObject { ["maxClientConnections"] = 2 };
        await using var lb = await Balancer.StartAsync(config);
        var client = lb.App.ClientUri();

        // 20 clients at once, each one request with Connection: close: slots come back as each ends.
        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ =>
            RawHttp.SendAsync(client, $"GET / HTTP/1.1\r\nHost: {client.Authority}\r\nConnection: close\r\n")));

        Assert.All(responses, r => Assert.Equal(200, r.Status));
        Assert.Equal(20, a.Requests);
    }
}
