using System.Net;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// listenProtocols ["h2c"]: HTTP/2 with prior knowledge on a plain listener (gRPC clients inside a
// cluster), forwarded to an HTTP/1.1 backend as usual. (h2 by ALPN on https: TlsListenerTests.)
public sealed class Http2ListenTests
{
    [Fact]
    public async Task H2cListen_PriorKnowledgeHttp2_Forwarded()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        var config = Balancer.Config(a);
        config["listenProtocols"] = new JsonArray("h2c");
        await using var lb = await Balancer.StartAsync(config);
        using var client = new HttpClient { BaseAddress = lb.App.ClientUri(), DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await client.PostAsync("/h2c?x=1", new StringContent("body"));
        var seen = Echo.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal(("POST", "/h2c?x=1", "body"), (seen.Method, seen.Target, seen.Body));
        Assert.Equal(["http"], seen.Lines("X-Forwarded-Proto"));
    }

    [Fact]
    public async Task H2cListen_Http11Client_RefusedByKestrel()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = Balancer.Config(a);
        config["listenProtocols"] = new JsonArray("h2c");
        await using var lb = await Balancer.StartAsync(config);
        using var client = new HttpClient { BaseAddress = lb.App.ClientUri() };

        using var response = await client.GetAsync("/");

        // Kestrel's own answer to HTTP/1.x on an HTTP/2-only endpoint; nothing is forwarded.
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(0, a.Requests);
    }

    [Fact]
    public async Task H2cListen_StopWithARequestInFlight_ItsResponseStillArrives()
    {
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            arrived.TrySetResult();
            await held.Task;
            await context.Response.WriteAsync("finished");
        });
        var config = Balancer.Config(a);
        config["listenProtocols"] = new JsonArray("h2c");
        await using var lb = await Balancer.StartAsync(config);
        using var client = new HttpClient { BaseAddress = lb.App.ClientUri(), DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        var request = client.GetAsync("/slow");
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var stopping = lb.App.StopAsync();
        held.SetResult();
        using var response = await request.WaitAsync(TimeSpan.FromSeconds(10));
        var body = await response.Content.ReadAsStringAsync();
        client.Dispose(); // its HTTP/2 connection closes: the stop need not wait out the idle grace
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("finished", body);
    }
}
