using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Resilience;

// A backend that answers with something that is not HTTP: the client gets a 502 with a short
// plain-text reason, never a stack trace, and the balancer keeps serving.
public sealed class MalformedResponseTests
{
    // Accepts connections, reads the request head, answers garbage, closes.
    sealed class GarbageBackend : IAsyncDisposable
    {
        readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource _stop = new();
        readonly Task _loop;

        public GarbageBackend()
        {
            _listener.Start();
            _loop = Task.Run(AcceptLoopAsync);
        }

        public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

        async Task AcceptLoopAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket socket;
                try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
                catch (OperationCanceledException) { return; }
                _ = Task.Run(async () =>
                {
                    using (socket)
                    {
                        var buffer = new byte[4096];
                        try
                        {
                            await socket.ReceiveAsync(buffer, SocketFlags.None);
                            await socket.SendAsync(Encoding.ASCII.GetBytes("THIS IS NOT HTTP\r\n\r\n"), SocketFlags.None);
                            socket.Shutdown(SocketShutdown.Both);
                        }
                        catch (SocketException) { }
                    }
                });
            }
        }

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            await _loop;
        }
    }

    static JsonObject Config(params string[] urls) => new()
    {
        ["listen"] = "http://127.0.0.1:0",
        ["admin"] = "http://127.0.0.1:0",
        ["backends"] = new JsonArray(urls.Select(u => (JsonNode)new JsonObject { ["url"] = u }).ToArray()),
        // Probes would take the garbage backend down; these tests are about real traffic.
        ["healthCheck"] = new JsonObject { ["interval"] = "1h" },
        ["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = 100 },
    };

    [Fact]
    public async Task Get_OnlyBackendAnswersGarbage_502PlainTextAndStillServing()
    {
        await using var garbage = new GarbageBackend();
        var config = Config(garbage.Url);
        config["retries"] = 0;
        await using var lb = await Balancer.StartAsync(config);

        for (var i = 0; i < 3; i++) // the balancer keeps answering, request after request
        {
            using var response = await lb.Client.GetAsync("/x");
            var body = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
            Assert.Contains("bad gateway", body);
            Assert.DoesNotContain("   at ", body); // no stack trace
            Assert.True(body.Length < 200, body);
        }
        Assert.Equal("ok", await lb.Admin.GetStringAsync("/healthz"));
        var status = await lb.StatusAsync();
        Assert.Equal(3, status.GetProperty("backends")[0].GetProperty("failures").GetInt64());
    }

    [Fact]
    public async Task Get_OneBackendAnswersGarbage_RetriedOnTheOther()
    {
        await using var garbage = new GarbageBackend();
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(Config(garbage.Url, good.Url));

        for (var i = 0; i < 4; i++)
            Assert.Equal("backend-good", await lb.Client.GetStringAsync("/x")); // never the garbage
    }
}
