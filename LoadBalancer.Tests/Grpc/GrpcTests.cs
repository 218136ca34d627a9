using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Net.Client;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Grpc;

// Contract, "Edge": gRPC passes through on h2c/h2 legs, streaming and trailers included, and
// when the balancer itself fails a gRPC call the client gets a gRPC error (trailers-only,
// grpc-status 14 or 4), not an HTTP one. Real Grpc.AspNetCore backends (h2c), the real
// Grpc.Net.Client, through the balancer listening h2c (and once https with h2 by ALPN).
public sealed class GrpcTests : IAsyncDisposable
{
    readonly List<IAsyncDisposable> _owned = [];
    readonly List<GrpcChannel> _channels = [];

    async Task<GrpcBackend> BackendAsync(string name)
    {
        var backend = await GrpcBackend.StartAsync(name);
        _owned.Add(backend);
        return backend;
    }

    static JsonObject Config(params GrpcBackend[] backends) => new()
    {
        ["listen"] = "http://127.0.0.1:0",
        ["admin"] = "http://127.0.0.1:0",
        ["listenProtocols"] = new JsonArray("h2c"),
        ["backends"] = new JsonArray(backends.Select(b => (JsonNode)new JsonObject { ["url"] = b.Url, ["protocol"] = "h2c" }).ToArray()),
        ["healthCheck"] = new JsonObject { ["interval"] = "1h", ["timeout"] = "2s" },
    };

    async Task<Balancer> BalancerAsync(JsonObject config, string? directory = null)
    {
        var lb = await Balancer.StartAsync(config, directory: directory);
        _owned.Add(lb);
        return lb;
    }

    Tester.TesterClient Client(Balancer lb, HttpMessageHandler? handler = null)
    {
        var channel = GrpcChannel.ForAddress(lb.App.ClientUri(), new GrpcChannelOptions { HttpHandler = handler });
        _channels.Add(channel);
        return new Tester.TesterClient(channel);
    }

    static async Task<JsonElement> WaitForAsync(Balancer lb, GrpcBackend backend, Func<JsonElement, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var entry = (await lb.StatusAsync()).GetProperty("backends").EnumerateArray().Single(b => b.GetProperty("url").GetString() == backend.Url);
            if (condition(entry)) return entry;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"/status never satisfied the condition; last: {entry}");
            await Task.Yield();
        }
    }

    static string State(JsonElement e) => e.GetProperty("state").GetString()!;
    static long Failures(JsonElement e) => e.GetProperty("failures").GetInt64();
    static int InFlight(JsonElement e) => e.GetProperty("inFlight").GetInt32();

    [Fact]
    public async Task Unary_ReplyHeadersTrailersAndStatusIntact()
    {
        await BackendAsync("a");
        var lb = await BalancerAsync(Config(_owned.OfType<GrpcBackend>().ToArray()));

        using var call = Client(lb).EchoAsync(new EchoRequest { Text = "hello" });
        var reply = await call.ResponseAsync;
        var headers = await call.ResponseHeadersAsync;

        Assert.Equal(("hello", "a"), (reply.Text, reply.Backend));
        Assert.Equal("a", headers.GetValue("x-backend-header"));
        Assert.Equal("a", call.GetTrailers().GetValue("x-backend-trailer"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Unary_LargeMessagesBothWays_FlowControlCarriesThem()
    {
        var a = await BackendAsync("a");
        var lb = await BalancerAsync(Config(a));
        var text = new string('x', 3 * 1024 * 1024); // past HTTP/2's initial windows many times over

        var reply = await Client(lb).EchoAsync(new EchoRequest { Text = text });

        Assert.Equal(text.Length, reply.Text.Length);
    }

    [Fact]
    public async Task ServerStreaming_EveryMessageInOrderThenTrailers()
    {
        var a = await BackendAsync("a");
        var lb = await BalancerAsync(Config(a));

        using var call = Client(lb).Count(new CountRequest { N = 50 });
        var texts = new List<string>();
        await foreach (var reply in call.ResponseStream.ReadAllAsync()) texts.Add(reply.Text);

        Assert.Equal(Enumerable.Range(1, 50).Select(i => i.ToString()), texts);
        Assert.Equal("50", call.GetTrailers().GetValue("x-count"));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ClientStreaming_EveryMessageArrives()
    {
        var a = await BackendAsync("a");
        var lb = await BalancerAsync(Config(a));

        using var call = Client(lb).Sum();
        for (var i = 1; i <= 100; i++) await call.RequestStream.WriteAsync(new Number { Value = i });
        await call.RequestStream.CompleteAsync();
        var reply = await call.ResponseAsync;

        Assert.Equal((5050L, 100), (reply.Sum, reply.Count));
    }

    [Fact]
    public async Task BackendError_StatusDetailAndTrailersPassedThrough_NotCountedAgainstIt()
    {
        var a = await BackendAsync("a");
        var lb = await BalancerAsync(Config(a));

        var e = await Assert.ThrowsAsync<RpcException>(() => Client(lb).FailAsync(new FailRequest { Code = (int)StatusCode.NotFound, Detail = "no such order: 42" }).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Equal("no such order: 42", e.Status.Detail);
        Assert.Equal("a", e.Trailers.GetValue("x-failed-on"));
        Assert.Equal(0, Failures(await WaitForAsync(lb, a, s => InFlight(s) == 0)));
    }

    [Fact]
    public async Task BackendUnavailableStatus_CountedAsAPassiveFailureAndPassedThrough()
    {
        var a = await BackendAsync("a");
        var lb = await BalancerAsync(Config(a));

        var e = await Assert.ThrowsAsync<RpcException>(() => Client(lb).FailAsync(new FailRequest { Code = (int)StatusCode.Unavailable, Detail = "overloaded" }).ResponseAsync);

        Assert.Equal((StatusCode.Unavailable, "overloaded"), (e.StatusCode, e.Status.Detail)); // the backend's own answer
        Assert.Equal(1, Failures(await WaitForAsync(lb, a, s => InFlight(s) == 0)));
    }

    [Fact]
    public async Task ClientDeadline_HonouredEndToEnd_BackendSeesTheCancellationAndIsNotBlamed()
    {
        var a = await BackendAsync("a");
        var lb = await BalancerAsync(Config(a));
        await WaitForAsync(lb, a, s => State(s) == "healthy");

        var call = Client(lb).HangAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddMilliseconds(500));
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        await a.HangCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10)); // the deadline reached the backend
        var entry = await WaitForAsync(lb, a, s => InFlight(s) == 0);
        Assert.Equal(("healthy", 0L), (State(entry), Failures(entry)));
    }

    [Fact]
    public async Task BalancerTimedOut_DeadlineExceededFromTheBalancer()
    {
        var a = await BackendAsync("a");
        var config = Config(a);
        config["requestTimeout"] = "300ms";
        var lb = await BalancerAsync(config);

        var e = await Assert.ThrowsAsync<RpcException>(() => Client(lb).HangAsync(new EchoRequest()).ResponseAsync); // no client deadline

        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);
        Assert.Contains("gateway timeout", e.Status.Detail);
        Assert.Contains("response timeout", e.Status.Detail);
    }

    [Fact]
    public async Task EveryAttemptFailed_UnavailableFromTheBalancer()
    {
        var a = await BackendAsync("a");
        var b = await BackendAsync("b");
        var config = Config(a, b);
        var lb = await BalancerAsync(config);
        await a.StopAsync();
        await b.StopAsync();

        var e = await Assert.ThrowsAsync<RpcException>(() => Client(lb).EchoAsync(new EchoRequest { Text = "x" }).ResponseAsync);

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal("bad gateway: all 2 backend attempts failed, the last with connection refused", e.Status.Detail);
    }

    [Fact]
    public async Task NoHealthyBackend_UnavailableFromTheBalancer()
    {
        var a = await BackendAsync("a");
        a.HealthStatus = 503;
        var config = Config(a);
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        var lb = await BalancerAsync(config);
        await WaitForAsync(lb, a, s => State(s) == "unhealthy");

        var e = await Assert.ThrowsAsync<RpcException>(() => Client(lb).EchoAsync(new EchoRequest { Text = "x" }).ResponseAsync);

        Assert.Equal((StatusCode.Unavailable, "no healthy backends"), (e.StatusCode, e.Status.Detail));
    }

    [Fact]
    public async Task HttpsListenH2ByAlpn_UnaryAndStreaming()
    {
        using var ca = TestCa.Create();
        var dir = Directory.CreateTempSubdirectory("lb-grpc-tls-").FullName;
        using (var pair = ca.Issue(1)) TestCa.WritePem(pair, Path.Combine(dir, "lb.pem"), Path.Combine(dir, "lb.key"));
        var a = await BackendAsync("a");
        var config = Config(a);
        config["listen"] = "https://127.0.0.1:0";
        config.Remove("listenProtocols"); // https default: h2 and http/1.1 by ALPN
        config["tls"] = new JsonObject { ["certificate"] = "lb.pem", ["key"] = "lb.key" };
        var lb = await BalancerAsync(config, dir);
        var client = Client(lb, new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = ca.Trust() } });

        var reply = await client.EchoAsync(new EchoRequest { Text = "over tls" });
        using var stream = client.Count(new CountRequest { N = 3 });
        var texts = new List<string>();
        await foreach (var r in stream.ResponseStream.ReadAllAsync()) texts.Add(r.Text);

        Assert.Equal("over tls", reply.Text);
        Assert.Equal(["1", "2", "3"], texts);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels) channel.Dispose();
        foreach (var x in Enumerable.Reverse(_owned)) await x.DisposeAsync();
    }
}
