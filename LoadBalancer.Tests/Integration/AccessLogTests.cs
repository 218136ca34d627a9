using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// Contract, "Edge: ... access log": one line per request, written off the request path, over
// real sockets. The line lands a moment after the client has its response, so each test awaits
// it in the file (bounded), never sleeps.
public sealed partial class AccessLogTests
{
    static JsonObject WithAccessLog(JsonObject config, string format = "json")
    {
        config["accessLog"] = new JsonObject { ["path"] = "access.log", ["format"] = format };
        return config;
    }

    static string LogPath(Balancer lb) => Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "access.log");

    static async Task<JsonElement> OneLineAsync(Balancer lb) =>
        JsonDocument.Parse((await AccessLogFile.WaitForCountAsync(LogPath(lb), 1)).Single()).RootElement;

    static string Id(HttpResponseMessage response) => response.Headers.GetValues("X-Request-Id").Single();

    [Fact]
    public async Task Get_Answered_OneJsonLineWithEveryField()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(backend)));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/hello?x=1&y=%2F");
        request.Headers.UserAgent.ParseAdd("test-agent/1.0");
        request.Headers.Referrer = new Uri("http://ref.test/page");
        var before = DateTimeOffset.UtcNow;

        using var response = await lb.Client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var line = await OneLineAsync(lb);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var time = DateTimeOffset.Parse(line.GetProperty("time").GetString()!);
        Assert.InRange(time, before.AddSeconds(-1), DateTimeOffset.UtcNow);
        Assert.Equal("127.0.0.1", line.GetProperty("client").GetString());
        Assert.Equal("GET", line.GetProperty("method").GetString());
        Assert.Equal("/hello?x=1&y=%2F", line.GetProperty("target").GetString()); // as the client sent it
        Assert.Equal("HTTP/1.1", line.GetProperty("protocol").GetString());
        Assert.Equal(200, line.GetProperty("status").GetInt32());
        Assert.Equal(0, line.GetProperty("bytesIn").GetInt64());
        Assert.Equal(body.Length, line.GetProperty("bytesOut").GetInt64());
        Assert.Equal(Id(response), line.GetProperty("requestId").GetString());
        Assert.Equal(backend.Url, line.GetProperty("backend").GetString());
        var attempt = Assert.Single(line.GetProperty("attempts").EnumerateArray());
        Assert.Equal(backend.Url, attempt.GetProperty("backend").GetString());
        Assert.Equal("response", attempt.GetProperty("outcome").GetString());
        Assert.InRange(attempt.GetProperty("durationMs").GetDouble(), 0, line.GetProperty("durationMs").GetDouble());
        Assert.Equal(0, line.GetProperty("queueMs").GetDouble());
        Assert.Equal("ok", line.GetProperty("termination").GetString());
        Assert.Equal("http://ref.test/page", line.GetProperty("referer").GetString());
        Assert.Equal("test-agent/1.0", line.GetProperty("userAgent").GetString());
    }

    [Fact]
    public async Task Post_Body_BytesInAndBytesOutCounted()
    {
        await using var backend = await TestBackend.StartAsync("sink", handler: async context =>
        {
            var (length, _) = await Resilience.GeneratedBody.ReadAsync(context.Request.Body);
            await context.Response.WriteAsync(new string('x', (int)(length / 2)));
        });
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(backend)));

        using var response = await lb.Client.PostAsync("/upload", new ByteArrayContent(new byte[100_000]));
        var line = await OneLineAsync(lb);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(100_000, line.GetProperty("bytesIn").GetInt64());
        Assert.Equal(50_000, line.GetProperty("bytesOut").GetInt64());
    }

    [Fact]
    public async Task Get_FirstBackendRefuses_BothAttemptsListedAndTheFailureLogNamesTheRequest()
    {
        var dead = await TestBackend.StartAsync("dead");
        await dead.StopAsync(); // its port refuses connections now
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(dead, good))); // round-robin tries dead first

        using var response = await lb.Client.GetAsync("/");
        var line = await OneLineAsync(lb);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var attempts = line.GetProperty("attempts").EnumerateArray().ToArray();
        Assert.Equal([(dead.Url, "connect-refused"), (good.Url, "response")],
            attempts.Select(a => (a.GetProperty("backend").GetString(), a.GetProperty("outcome").GetString())));
        Assert.Equal(good.Url, line.GetProperty("backend").GetString());
        Assert.Equal("ok", line.GetProperty("termination").GetString());
        // Every log line about the request carries its id.
        var id = Id(response);
        Assert.Equal(id, line.GetProperty("requestId").GetString());
        Assert.Contains(lb.Logs.Lines, l => l.Message.StartsWith($"Forward to {dead.Url} failed", StringComparison.Ordinal)
            && l.Message.EndsWith($"request {id}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Get_NoEligibleBackend_503WithNoBackendAndNoAttempts()
    {
        await using var backend = await TestBackend.StartAsync("down");
        backend.HealthStatus = 500;
        var config = WithAccessLog(Balancer.Config(backend));
        config["healthCheck"]!["unhealthyThreshold"] = 1;
        await using var lb = await Balancer.StartAsync(config);
        await lb.Logs.WaitForAsync($"Backend {backend.Url} is now unhealthy");

        using var response = await lb.Client.GetAsync("/");
        var line = await OneLineAsync(lb);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(503, line.GetProperty("status").GetInt32());
        Assert.Equal(JsonValueKind.Null, line.GetProperty("backend").ValueKind);
        Assert.Equal(0, line.GetProperty("attempts").GetArrayLength());
        Assert.Equal("no-backend", line.GetProperty("termination").GetString());
        Assert.Equal(Id(response), line.GetProperty("requestId").GetString());
        Assert.Equal((await response.Content.ReadAsByteArrayAsync()).Length, line.GetProperty("bytesOut").GetInt64());
    }

    [Fact]
    public async Task Get_ClientGivesUpBeforeTheResponse_499TerminationClient()
    {
        var arrived = Channel.CreateUnbounded<bool>();
        var released = Channel.CreateUnbounded<bool>();
        await using var backend = await TestBackend.StartAsync("slow", handler: async context =>
        {
            context.RequestAborted.Register(() => released.Writer.TryWrite(true));
            arrived.Writer.TryWrite(true);
            await Task.Delay(Timeout.Infinite, context.RequestAborted); // holds the request until the balancer lets go
        });
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(backend)));

        using var cancel = new CancellationTokenSource();
        var request = lb.Client.GetAsync("/slow", cancel.Token);
        await arrived.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
        var line = await OneLineAsync(lb);

        Assert.Equal(499, line.GetProperty("status").GetInt32());
        Assert.Equal("client", line.GetProperty("termination").GetString());
        var attempt = Assert.Single(line.GetProperty("attempts").EnumerateArray());
        Assert.Equal("client-abort", attempt.GetProperty("outcome").GetString());
        Assert.Equal(backend.Url, line.GetProperty("backend").GetString()); // where it was when the client left
    }

    [Fact]
    public async Task Get_CombinedFormat_NginxCombinedLine()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(backend), format: "combined"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/c?q=1");
        request.Headers.UserAgent.ParseAdd("test-agent/1.0");
        request.Headers.Referrer = new Uri("http://ref.test/");

        using var response = await lb.Client.SendAsync(request);
        var line = (await AccessLogFile.WaitForCountAsync(LogPath(lb), 1)).Single();

        Assert.Matches(Combined(), line);
        Assert.EndsWith($"\"GET /c?q=1 HTTP/1.1\" 200 {"backend-a".Length} \"http://ref.test/\" \"test-agent/1.0\"", line);
    }

    [GeneratedRegex("""^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "[^"]*" \d{3} \d+ "[^"]*" "[^"]*"$""")]
    private static partial Regex Combined();

    [Fact]
    public async Task Rotation_FileMovedAway_NewLinesInANewFileAtThePathWithinTwoSeconds()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(backend)));
        var path = LogPath(lb);
        using (await lb.Client.GetAsync("/before")) { }
        await AccessLogFile.WaitForCountAsync(path, 1);

        File.Move(path, path + ".1"); // what logrotate does by default
        await lb.Logs.WaitForAsync("reopened it", TimeSpan.FromSeconds(2));
        using (await lb.Client.GetAsync("/after")) { }
        var after = await AccessLogFile.WaitForCountAsync(path, 1);

        Assert.Equal("/after", JsonDocument.Parse(Assert.Single(after)).RootElement.GetProperty("target").GetString());
        Assert.Equal("/before", JsonDocument.Parse(Assert.Single(AccessLogFile.Read(path + ".1"))).RootElement.GetProperty("target").GetString());
    }

    [Fact]
    public async Task Reload_AccessLogAdded_LinesFromThenOn()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = Balancer.Config(backend);
        await using var lb = await Balancer.StartAsync(config);
        using (await lb.Client.GetAsync("/unlogged")) { }

        await lb.WriteConfigAsync(WithAccessLog(config));
        await lb.Logs.WaitForAsync($"Access log: writing json lines to {LogPath(lb)}");
        using (await lb.Client.GetAsync("/logged")) { }
        var line = await OneLineAsync(lb);

        Assert.Equal("/logged", line.GetProperty("target").GetString());
    }

    [Fact]
    [Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
    public async Task Start_PortInUse_ExitsOneWithTheOneLineAsWithoutAnAccessLog()
    {
        // The writer starts before Kestrel and has its file open when the bind fails: the process
        // must still end at once (it once hung there, its timer loop spinning in Dispose).
        await using var backend = await TestBackend.StartAsync("a");
        var held = new TcpListener(IPAddress.Loopback, 0);
        held.Start();
        var dir = Directory.CreateTempSubdirectory("lb-access-port-in-use-");
        try
        {
            var port = ((IPEndPoint)held.LocalEndpoint).Port;
            var config = WithAccessLog(Balancer.Config(backend));
            config["listen"] = $"http://127.0.0.1:{port}";
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());

            await using var lb = LbProcess.Start("--config", path);
            var exitCode = await lb.WaitForExitAsync();

            Assert.True(exitCode == 1, $"exit code {exitCode}; stderr: {lb.StandardError}");
            Assert.Equal([$"error: cannot listen on http://127.0.0.1:{port} (listen): address already in use"], lb.StandardErrorLines);
            Assert.Equal("", lb.StandardOutput); // "Access log: writing ..." only once it listens
        }
        finally
        {
            held.Stop();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Metrics_DroppedCounter_ExportedFromZero()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(WithAccessLog(Balancer.Config(backend)));

        var metrics = await lb.Admin.GetStringAsync("/metrics");

        Assert.Matches(@"(?m)^loadbalancer_access_log_dropped_total(\{[^}]*\})? 0( \d+)?$", metrics);
    }
}
