using System.Net;
using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Net.Client;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LoadBalancer.Tests.Grpc;

// loadbalancer_grpc_calls_total{backend, grpc_status}: what gRPC clients got, which the request
// histogram cannot say (a failed gRPC call is HTTP 200 there). Real gRPC backend and client for
// the normal case and the balancer's own UNAVAILABLE; a hand-made h2c backend for a hostile
// grpc-status, which must not become a label of its own.
public sealed class GrpcMetricsTests : IAsyncDisposable
{
    readonly List<IAsyncDisposable> _owned = [];

    const string Calls = "loadbalancer_grpc_calls_total";

    static JsonObject Config(string backendUrl) => new()
    {
        ["listen"] = "http://127.0.0.1:0",
        ["admin"] = "http://127.0.0.1:0",
        ["listenProtocols"] = new JsonArray("h2c"),
        ["backends"] = new JsonArray(new JsonObject { ["url"] = backendUrl, ["protocol"] = "h2c" }),
        ["healthCheck"] = new JsonObject { ["interval"] = "1h", ["timeout"] = "2s" },
    };

    async Task<Balancer> BalancerAsync(JsonObject config)
    {
        var lb = await Balancer.StartAsync(config);
        _owned.Add(lb);
        return lb;
    }

    static async Task<PrometheusText> WaitForAsync(Balancer lb, Func<PrometheusText, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var text = await lb.Admin.GetStringAsync("/metrics");
            var metrics = PrometheusText.Parse(text);
            if (metrics.Families.ContainsKey(Calls) && condition(metrics)) return metrics;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("/metrics never satisfied the condition; last:\n" + text);
            await Task.Yield();
        }
    }

    static double Count(PrometheusText m, string backend, string status) =>
        m.Family(Calls).Samples.Where(s => s.Labels["backend"] == backend && s.Labels["grpc_status"] == status).Sum(s => s.Value);

    [Fact]
    public async Task OkFromTheBackend_AndUnavailableFromTheBalancer_CountedByStatus()
    {
        var backend = await GrpcBackend.StartAsync("a");
        _owned.Add(backend);
        var lb = await BalancerAsync(Config(backend.Url));
        using var channel = GrpcChannel.ForAddress(lb.App.ClientUri());
        var client = new Tester.TesterClient(channel);

        Assert.Equal("hello", (await client.EchoAsync(new EchoRequest { Text = "hello" })).Text);
        await backend.StopAsync();
        var e = await Assert.ThrowsAsync<RpcException>(() => client.EchoAsync(new EchoRequest { Text = "x" }).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);

        var metrics = await WaitForAsync(lb, m => Count(m, "none", "14") >= 1);
        Assert.Equal(1, Count(metrics, backend.Url, "0"));
        Assert.Equal(1, Count(metrics, "none", "14"));
        // The request histogram, by contrast, saw two HTTP 200s.
        Assert.Equal(2, metrics.Family("loadbalancer_request_duration_seconds").Samples
            .Where(s => s.Name.EndsWith("_count", StringComparison.Ordinal) && s.Labels["code"] == "2xx").Sum(s => s.Value));
    }

    [Fact]
    public async Task HostileGrpcStatus_CountedAsOther_NotALabelOfItsOwn()
    {
        var statuses = new Queue<string>(["7", "banana", "99999", "-1", "7"]);
        var backend = await TestBackend.StartAsync("g", protocols: HttpProtocols.Http2, handler: async context =>
        {
            context.Response.ContentType = "application/grpc";
            await context.Response.Body.FlushAsync();
            lock (statuses) context.Response.AppendTrailer("grpc-status", statuses.Dequeue());
        });
        _owned.Add(backend);
        var lb = await BalancerAsync(Config(backend.Url));
        using var http = new HttpClient { BaseAddress = lb.App.ClientUri() };

        for (var i = 0; i < 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/tester.Tester/Echo")
            {
                Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, // h2c, prior knowledge
                Content = new ByteArrayContent([0, 0, 0, 0, 0]),
            };
            request.Content.Headers.ContentType = new("application/grpc");
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync(); // to the end: the trailers
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {body}");
        }

        var metrics = await WaitForAsync(lb, m => Count(m, backend.Url, "7") + Count(m, backend.Url, "other") >= 5);
        Assert.Equal(2, Count(metrics, backend.Url, "7"));
        Assert.Equal(3, Count(metrics, backend.Url, "other"));
        Assert.Equal(["7", "other"], metrics.Family(Calls).Samples.Select(s => s.Labels["grpc_status"]).Distinct().Order());
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned)) await owned.DisposeAsync();
    }
}
