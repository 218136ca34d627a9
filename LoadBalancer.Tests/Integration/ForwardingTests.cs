using System.Net;
using System.Net.WebSockets;
using System.Text;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// What a backend receives and what a client gets back, through the balancer on real sockets.
public sealed class ForwardingTests
{
    [Fact]
    public async Task Put_PathQueryHeadersAndBody_ReachBackendUnchanged()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        using var request = new HttpRequestMessage(HttpMethod.Put, "/api/items/42%2Fx/caf%C3%A9?b=2&a=1&a=%20z")
        {
            Content = new StringContent("the body: ünïcode", Encoding.UTF8, "text/plain"),
        };
        request.Headers.Add("X-Custom", "one two");
        request.Headers.Add("Accept", "application/json");

        using var response = await lb.Client.SendAsync(request);
        var seen = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("PUT", seen.Method);
        Assert.Equal("/api/items/42%2Fx/caf%C3%A9?b=2&a=1&a=%20z", seen.Target);
        Assert.Equal(["one two"], seen.Lines("X-Custom"));
        Assert.Equal(["application/json"], seen.Lines("Accept"));
        Assert.Equal(["text/plain; charset=utf-8"], seen.Lines("Content-Type"));
        Assert.Equal("the body: ünïcode", seen.Body);
    }

    [Theory]
    [InlineData("/100%")]
    [InlineData("/%zz?x=%")]
    [InlineData("/a|b{c}")]
    [InlineData("/a/../b/./c")]
    [InlineData("//double//slash")]
    [InlineData("/semi;colon=1")]
    [InlineData("/?q=a+b&r=%2B&s=%26")]
    [InlineData("/npm/@types%2fcors")]
    public async Task Get_UnusualRequestTarget_ReachesBackendByteForByte(string target)
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        var response = await RawHttp.SendAsync(lb.App.ClientUri(), $"GET {target} HTTP/1.1\r\nHost: {lb.App.ClientUri().Authority}\r\n");

        Assert.Equal(200, response.Status);
        Assert.Equal(target, Echo.Parse(response.Body).Target);
    }

    [Fact]
    public async Task Post_BackendAnswersWithStatusHeadersAndBody_ClientGetsThemUnchanged()
    {
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            context.Response.StatusCode = 201;
            context.Response.Headers["X-Backend"] = "a";
            context.Response.Headers.Location = "/things/7";
            await context.Response.WriteAsync($"created from {body.Length} bytes");
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using var response = await lb.Client.PostAsync("/things", new StringContent(new string('x', 100_000)));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(["a"], response.Headers.GetValues("X-Backend"));
        Assert.Equal("/things/7", response.Headers.Location?.OriginalString);
        Assert.Equal("created from 100000 bytes", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Get_ClientSentXForwardedFor_BackendGetsItWithClientAddressOnOneLine()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");

        using var response = await lb.Client.SendAsync(request);
        var seen = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(["203.0.113.7, 127.0.0.1"], seen.Lines("X-Forwarded-For"));
    }

    [Fact]
    public async Task Get_NoXForwardedFor_BackendGetsClientAddress()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        var seen = Echo.Parse(await lb.Client.GetStringAsync("/"));

        Assert.Equal(["127.0.0.1"], seen.Lines("X-Forwarded-For"));
    }

    [Fact]
    public async Task Get_XForwardedForOnTwoLines_BackendGetsOneLineWithBothAndClientAddress()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var host = lb.App.ClientUri().Authority;

        var response = await RawHttp.SendAsync(lb.App.ClientUri(),
            $"GET / HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2, 192.0.2.9\r\n");
        var seen = Echo.Parse(response.Body);

        Assert.Equal(200, response.Status);
        Assert.Equal(["203.0.113.7, 198.51.100.2, 192.0.2.9, 127.0.0.1"], seen.Lines("X-Forwarded-For"));
    }

    [Fact]
    public async Task Get_ClientSentForwardedProtoAndHost_Replaced()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        request.Headers.Host = "shop.example:8443";
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-Host", "evil.example");

        using var response = await lb.Client.SendAsync(request);
        var seen = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(["http"], seen.Lines("X-Forwarded-Proto"));
        Assert.Equal(["shop.example:8443"], seen.Lines("X-Forwarded-Host"));
    }

    [Fact]
    public async Task Get_DefaultHost_ForwardedHostIsBalancerAddressWithPort()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        var seen = Echo.Parse(await lb.Client.GetStringAsync("/"));

        Assert.Equal([lb.App.ClientUri().Authority], seen.Lines("X-Forwarded-Host"));
        Assert.Equal(["http"], seen.Lines("X-Forwarded-Proto"));
    }

    public static TheoryData<string> HopByHopRequests => new()
    {
        // Every hop-by-hop header the contract lists (Transfer-Encoding aside: it frames the body).
        "Connection: keep-alive, custom\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Checksum\r\nUpgrade: h2c\r\n",
        // An upgrade that is not a WebSocket: still a plain request, nothing hop-by-hop forwarded.
        "Connection: Upgrade\r\nUpgrade: h2c\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n",
    };

    [Theory]
    [MemberData(nameof(HopByHopRequests))]
    public async Task Get_HopByHopHeaders_DoNotReachBackend(string headers)
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var host = lb.App.ClientUri().Authority;

        var response = await RawHttp.SendAsync(lb.App.ClientUri(), $"GET /hop HTTP/1.1\r\nHost: {host}\r\nX-Keep: yes\r\n{headers}");
        var seen = Echo.Parse(response.Body);

        Assert.Equal(200, response.Status);
        Assert.Equal("/hop", seen.Target);
        Assert.Equal(["yes"], seen.Lines("X-Keep"));
        foreach (var name in (string[])["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade"])
            Assert.False(seen.Has(name), $"{name}: {string.Join(" | ", seen.Lines(name))} reached the backend");
    }

    [Theory]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    public async Task Get_BackendAnswersGatewayError_PassedThroughUnchangedAndNotRetried(int status)
    {
        RequestDelegate fail = async context =>
        {
            context.Response.StatusCode = status;
            context.Response.Headers["X-Reason"] = "maintenance";
            await context.Response.WriteAsync($"backend says {status}");
        };
        await using var a = await TestBackend.StartAsync("a", handler: fail);
        await using var b = await TestBackend.StartAsync("b", handler: fail);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b));

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal($"backend says {status}", await response.Content.ReadAsStringAsync());
        Assert.Equal(["maintenance"], response.Headers.GetValues("X-Reason"));
        Assert.Equal(1, a.Requests + b.Requests);
    }

    [Fact]
    public async Task Get_FiftySequentialRequests_ReuseBackendConnections()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        for (var i = 0; i < 50; i++) Assert.Equal("backend-a", await lb.Client.GetStringAsync($"/{i}"));

        Assert.Equal(50, a.Requests);
        Assert.InRange(a.Connections, 1, 2);
    }

    [Fact]
    public async Task WebSocket_Upgrade_TunnelledBothWays()
    {
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                context.Response.StatusCode = 400;
                return;
            }
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[4096];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    return;
                }
                var echo = Encoding.UTF8.GetBytes("echo: " + Encoding.UTF8.GetString(buffer, 0, received.Count));
                await socket.SendAsync(echo, WebSocketMessageType.Text, true, CancellationToken.None);
            }
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        using var client = new ClientWebSocket();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        await client.ConnectAsync(new Uri($"ws://{lb.App.ClientUri().Authority}/chat"), deadline.Token);
        var replies = new List<string>();
        foreach (var message in (string[])["hello", "second message"])
        {
            await client.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, true, deadline.Token);
            var buffer = new byte[4096];
            var received = await client.ReceiveAsync(buffer, deadline.Token);
            replies.Add(Encoding.UTF8.GetString(buffer, 0, received.Count));
        }
        await client.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", deadline.Token);

        Assert.Equal(["echo: hello", "echo: second message"], replies);
        Assert.Equal(WebSocketState.Closed, client.State);
        Assert.Equal(1, a.Requests);
    }
}
