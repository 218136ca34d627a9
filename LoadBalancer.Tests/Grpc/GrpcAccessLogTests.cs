using System.Text.Json;
using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Net.Client;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Grpc;

// The access log and X-Request-Id on HTTP/2: gRPC calls through the balancer (h2c both legs) with
// the log on still get their trailers, each call is one line (protocol HTTP/2, body bytes both
// ways), and a call the balancer fails itself (trailers-only) still carries the request's id.
public sealed class GrpcAccessLogTests : IAsyncDisposable
{
    readonly List<IAsyncDisposable> _owned = [];
    readonly List<GrpcChannel> _channels = [];

    async Task<(GrpcBackend Backend, Balancer Lb)> StartAsync(Action<GrpcBackend, JsonObject>? change = null)
    {
        var backend = await GrpcBackend.StartAsync("a");
        _owned.Add(backend);
        var config = new JsonObject
        {
            ["listen"] = "http://127.0.0.1:0",
            ["admin"] = "http://127.0.0.1:0",
            ["listenProtocols"] = new JsonArray("h2c"),
            ["backends"] = new JsonArray(new JsonObject { ["url"] = backend.Url, ["protocol"] = "h2c" }),
            ["healthCheck"] = new JsonObject { ["interval"] = "1h", ["timeout"] = "2s" },
            ["accessLog"] = new JsonObject { ["path"] = "access.log" },
        };
        change?.Invoke(backend, config);
        var lb = await Balancer.StartAsync(config);
        _owned.Add(lb);
        return (backend, lb);
    }

    Tester.TesterClient Client(Balancer lb)
    {
        var channel = GrpcChannel.ForAddress(lb.App.ClientUri());
        _channels.Add(channel);
        return new Tester.TesterClient(channel);
    }

    static string LogPath(Balancer lb) => Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "access.log");

    static JsonElement[] Parse(string[] lines) => lines.Select(l => JsonDocument.Parse(l).RootElement).ToArray();

    [Fact]
    public async Task UnaryAndServerStreaming_TrailersIntactAndOneHttp2LineEach()
    {
        var (backend, lb) = await StartAsync();
        var client = Client(lb);

        using var unary = client.EchoAsync(new EchoRequest { Text = "hello" }, new Metadata { { "x-request-id", "grpc-call-1" } });
        var reply = await unary.ResponseAsync;
        using var stream = client.Count(new CountRequest { N = 20 });
        var count = 0;
        await foreach (var _ in stream.ResponseStream.ReadAllAsync()) count++;
        var lines = Parse(await AccessLogFile.WaitForCountAsync(LogPath(lb), 2));

        Assert.Equal(("hello", 20), (reply.Text, count));
        Assert.Equal("20", stream.GetTrailers().GetValue("x-count")); // trailers pass the counted body
        Assert.Equal("grpc-call-1", (await unary.ResponseHeadersAsync).GetValue("x-request-id"));
        Assert.All(lines, l =>
        {
            Assert.Equal("HTTP/2", l.GetProperty("protocol").GetString());
            Assert.Equal("POST", l.GetProperty("method").GetString());
            Assert.Equal(200, l.GetProperty("status").GetInt32());
            Assert.Equal(backend.Url, l.GetProperty("backend").GetString());
            Assert.Equal("ok", l.GetProperty("termination").GetString());
            Assert.True(l.GetProperty("bytesIn").GetInt64() > 5, "a gRPC message: a 5-byte frame header and more");
        });
        var echo = lines.Single(l => l.GetProperty("target").GetString() == "/lbtest.Tester/Echo");
        var counted = lines.Single(l => l.GetProperty("target").GetString() == "/lbtest.Tester/Count");
        Assert.Equal("grpc-call-1", echo.GetProperty("requestId").GetString());
        Assert.True(counted.GetProperty("bytesOut").GetInt64() > echo.GetProperty("bytesOut").GetInt64(), "20 messages are more bytes than 1");
    }

    [Fact]
    public async Task NoHealthyBackend_TrailersOnlyErrorCarriesTheRequestIdAndIsLogged()
    {
        var (backend, lb) = await StartAsync((b, config) =>
        {
            b.HealthStatus = 503;
            config["healthCheck"]!["unhealthyThreshold"] = 1;
        });
        await lb.Logs.WaitForAsync($"Backend {backend.Url} is now unhealthy");

        var e = await Assert.ThrowsAsync<RpcException>(() =>
            Client(lb).EchoAsync(new EchoRequest { Text = "x" }, new Metadata { { "x-request-id", "grpc-call-2" } }).ResponseAsync);
        var line = Parse(await AccessLogFile.WaitForCountAsync(LogPath(lb), 1)).Single();

        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.Equal("grpc-call-2", e.Trailers.GetValue("x-request-id")); // trailers-only: the headers are the trailers
        Assert.Equal("grpc-call-2", line.GetProperty("requestId").GetString());
        Assert.Equal("no-backend", line.GetProperty("termination").GetString());
        Assert.Equal(JsonValueKind.Null, line.GetProperty("backend").ValueKind);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels) channel.Dispose();
        for (var i = _owned.Count - 1; i >= 0; i--) await _owned[i].DisposeAsync();
    }
}
