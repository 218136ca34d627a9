using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Resilience;

// requestTimeout: a backend that never sends response headers. The attempt times out, the
// balancer lets go of the backend's connection, and nothing stays in flight.
public sealed class TimeoutTests
{
    // Never answers; ends only when the balancer drops the connection (seen in Released).
    sealed class Hang
    {
        readonly TaskCompletionSource _never = new();
        public TaskCompletionSource Released { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public RequestDelegate Handler => context =>
        {
            context.RequestAborted.Register(() => Released.TrySetResult());
            return _never.Task.WaitAsync(context.RequestAborted);
        };
    }

    static JsonObject WithTimeout(JsonObject config)
    {
        config["requestTimeout"] = "500ms";
        return config;
    }

    [Fact]
    public async Task Get_OnlyBackendHangs_504AfterRequestTimeoutNothingLeftInFlight()
    {
        var hang = new Hang();
        await using var backend = await TestBackend.StartAsync("hang", handler: hang.Handler);
        await using var lb = await Balancer.StartAsync(WithTimeout(Balancer.Config(backend)));

        var clock = Stopwatch.StartNew();
        using var response = await lb.Client.GetAsync("/"); // the client would wait 30 s
        clock.Stop();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.InRange((await response.Content.ReadAsStringAsync()).Length, 1, 300);
        await hang.Released.Task.WaitAsync(TimeSpan.FromSeconds(5)); // the backend's request was cancelled
        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0);
        Assert.Equal(1, status.Failures());
        Assert.Equal(1, backend.Requests);
    }

    [Fact]
    public async Task Get_FirstBackendHangs_RetriedOnAnotherAfterRequestTimeout()
    {
        var hang = new Hang();
        await using var slow = await TestBackend.StartAsync("hang", handler: hang.Handler);
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(WithTimeout(Balancer.Config(slow, good)));

        var clock = Stopwatch.StartNew();
        using var response = await lb.Client.GetAsync("/");
        clock.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("backend-good", await response.Content.ReadAsStringAsync());
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        await hang.Released.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, (await lb.WaitForStatusAsync(slow, s => s.InFlight() == 0)).InFlight());
    }

    [Fact]
    public async Task Post_FirstBackendHangs_NotRetried504()
    {
        var hang = new Hang();
        await using var slow = await TestBackend.StartAsync("hang", handler: hang.Handler);
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(WithTimeout(Balancer.Config(slow, good)));

        using var response = await lb.Client.PostAsync("/", new StringContent("order #1"));

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal(0, good.Requests); // it may have been processed: never sent twice
        await lb.WaitForStatusAsync(slow, s => s.InFlight() == 0);
    }

    [Theory]
    [InlineData(true, HttpStatusCode.GatewayTimeout)]  // refused, then timed out: the last one decides
    [InlineData(false, HttpStatusCode.BadGateway)]     // timed out, then refused
    public async Task Get_EveryAttemptFails_StatusFollowsTheLastAttempt(bool refusedFirst, HttpStatusCode expected)
    {
        var hang = new Hang();
        await using var slow = await TestBackend.StartAsync("hang", handler: hang.Handler);
        var dead = await TestBackend.StartAsync("dead");
        await dead.StopAsync();
        await using var lb = await Balancer.StartAsync(WithTimeout(refusedFirst ? Balancer.Config(dead, slow) : Balancer.Config(slow, dead)));

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(expected, response.StatusCode);
        Assert.Equal(1, slow.Requests);
    }

    [Fact]
    public async Task Post_FirstBackendNeverAcceptsConnection_RetriedAfterConnectTimeoutWithBodyIntact()
    {
        using var blackHole = BlackHole(out var url);
        await using var good = await TestBackend.StartAsync("good", handler: async context =>
        {
            var (length, sha) = await GeneratedBody.ReadAsync(context.Request.Body);
            await context.Response.WriteAsync($"{length} {Convert.ToHexString(sha)}");
        });
        var config = Balancer.Config(good);
        config["backends"]!.AsArray().Insert(0, new JsonObject { ["url"] = url }); // round-robin: the black hole first
        config["pool"] = new JsonObject { ["connectTimeout"] = "300ms" };
        config["requestTimeout"] = "20s";
        await using var lb = await Balancer.StartAsync(config);
        var body = RandomNumberGenerator.GetBytes(50_000);

        var clock = Stopwatch.StartNew();
        using var response = await lb.Client.PostAsync("/", new ByteArrayContent(body));
        clock.Stop();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // nothing was sent: safe to retry a POST
        Assert.Equal($"{body.Length} {Convert.ToHexString(SHA256.HashData(body))}", await response.Content.ReadAsStringAsync());
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Post_ClientUploadsSlowerThanRequestTimeout_NotATimeoutTheBackendGetsItAll()
    {
        await using var backend = await TestBackend.StartAsync("sink", handler: async context =>
        {
            var (length, _) = await GeneratedBody.ReadAsync(context.Request.Body);
            await context.Response.WriteAsync($"{length}");
        });
        await using var lb = await Balancer.StartAsync(WithTimeout(Balancer.Config(backend)));
        var pipe = new System.IO.Pipelines.Pipe();
        var upload = lb.Client.PostAsync("/upload", new StreamContent(pipe.Reader.AsStream()));

        // 4 x 300 ms: the upload takes more than twice requestTimeout (500 ms); the clock for the
        // backend starts only when the whole request is in.
        for (var i = 0; i < 4; i++)
        {
            await pipe.Writer.WriteAsync(new byte[1000]);
            await Task.Delay(TimeSpan.FromMilliseconds(300)); // the slow client itself, not a wait for the balancer
        }
        await pipe.Writer.CompleteAsync();
        using var response = await upload;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("4000", await response.Content.ReadAsStringAsync());
        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0);
        Assert.Equal(0, status.Failures());
    }

    [Fact]
    public async Task Post_BackendSilentAfterTheWholeBody_504AfterRequestTimeout()
    {
        var hang = new Hang();
        await using var backend = await TestBackend.StartAsync("hang", handler: async context =>
        {
            await GeneratedBody.ReadAsync(context.Request.Body);
            await hang.Handler(context);
        });
        await using var lb = await Balancer.StartAsync(WithTimeout(Balancer.Config(backend)));

        var clock = Stopwatch.StartNew();
        using var response = await lb.Client.PostAsync("/", new ByteArrayContent(new byte[10_000]));
        clock.Stop();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(5));
        Assert.Equal(1, (await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0)).Failures());
    }

    // A listener whose accept queue is full: connects to it neither succeed nor fail, they hang
    // (Linux drops the SYN), as with a backend behind a firewall that drops packets.
    static IDisposable BlackHole(out string url)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var endPoint = (IPEndPoint)listener.LocalEndPoint!;
        var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        filler.Connect(endPoint); // takes the only slot; never accepted
        url = $"http://127.0.0.1:{endPoint.Port}";
        return new Both(filler, listener);
    }

    sealed class Both(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }
}
