using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Resilience;

// Forwarding, "Only attempts that got no response headers are retried": real backends that
// refuse, reset or answer 503, and what the client sees.
public sealed class RetryTests
{
    // Answers "<name> <body length> <sha256 of body>" so a test sees which backend got the body, whole.
    static RequestDelegate Echo(string name) => async context =>
    {
        var (length, sha) = await GeneratedBody.ReadAsync(context.Request.Body);
        await context.Response.WriteAsync($"{name} {length} {Convert.ToHexString(sha)}");
    };

    static readonly RequestDelegate Reset = context =>
    {
        context.Abort();
        return Task.CompletedTask;
    };

    static async Task<TestBackend> StoppedAsync()
    {
        var dead = await TestBackend.StartAsync("dead");
        await dead.StopAsync(); // its port now refuses connections
        return dead;
    }

    static HttpRequestMessage Request(string method, byte[]? body, bool chunked = false)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), "/upload?x=1");
        if (body is not null)
        {
            request.Content = chunked ? new StreamContent(new NonSeekable(body)) : new ByteArrayContent(body);
            if (chunked) request.Headers.TransferEncodingChunked = true;
        }
        return request;
    }

    static string Expected(string name, byte[]? body) =>
        $"{name} {body?.Length ?? 0} {Convert.ToHexString(SHA256.HashData(body ?? []))}";

    [Theory]
    [InlineData("GET", 0, false)]
    [InlineData("POST", 300_000, false)]
    [InlineData("POST", 300_000, true)]
    [InlineData("PUT", 17, false)]
    public async Task Send_FirstBackendRefusesConnection_RetriedOnAnotherWithBodyIntact(string method, int size, bool chunked)
    {
        var dead = await StoppedAsync();
        await using var good = await TestBackend.StartAsync("good", handler: Echo("good"));
        await using var lb = await Balancer.StartAsync(Balancer.Config(dead, good)); // round-robin tries dead first
        var body = size == 0 ? null : RandomNumberGenerator.GetBytes(size);

        using var response = await lb.Client.SendAsync(Request(method, body, chunked));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Expected("good", body), await response.Content.ReadAsStringAsync());
        Assert.Equal(1, good.Requests);
        var deadStatus = await lb.WaitForStatusAsync(dead, s => s.InFlight() == 0);
        Assert.Equal(1, deadStatus.Failures()); // it really was tried first
    }

    [Fact]
    public async Task Get_FailedAttemptRetriedSuccessfully_NoWarningLogged()
    {
        var dead = await StoppedAsync();
        await using var reset = await TestBackend.StartAsync("reset", handler: Reset);
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(Balancer.Config(dead, reset, good));

        Assert.Equal("backend-good", await lb.Client.GetStringAsync("/"));

        // The client never noticed: an operator's log shows no warning (and no stack trace) for it.
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Level >= LogLevel.Warning);
        Assert.Equal(1, reset.Requests);
    }

    [Fact]
    public async Task Get_FirstBackendResetsBeforeHeaders_RetriedOnAnother()
    {
        await using var reset = await TestBackend.StartAsync("reset", handler: Reset);
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(Balancer.Config(reset, good));

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("backend-good", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, reset.Requests);
        Assert.Equal(1, good.Requests);
    }

    [Fact]
    public async Task Post_FirstBackendResetsBeforeHeaders_NotRetried502()
    {
        await using var reset = await TestBackend.StartAsync("reset", handler: Reset);
        await using var good = await TestBackend.StartAsync("good", handler: Echo("good"));
        await using var lb = await Balancer.StartAsync(Balancer.Config(reset, good));

        using var response = await lb.Client.SendAsync(Request("POST", RandomNumberGenerator.GetBytes(10_000)));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        Assert.InRange(text.Length, 1, 300);
        Assert.Equal(1, reset.Requests);
        Assert.Equal(0, good.Requests); // a POST that may have reached a backend is never sent twice
    }

    [Fact]
    public async Task Get_WithBodyFirstBackendResetsBeforeHeaders_NotRetried502()
    {
        await using var reset = await TestBackend.StartAsync("reset", handler: Reset);
        await using var good = await TestBackend.StartAsync("good", handler: Echo("good"));
        await using var lb = await Balancer.StartAsync(Balancer.Config(reset, good));

        using var response = await lb.Client.SendAsync(Request("GET", RandomNumberGenerator.GetBytes(1000)));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(0, good.Requests);
    }

    [Fact]
    public async Task Get_AllBackendsRefuse_502AfterRetriesPlusOneAttempts()
    {
        var dead = new[] { await StoppedAsync(), await StoppedAsync(), await StoppedAsync(), await StoppedAsync() };
        await using var lb = await Balancer.StartAsync(Balancer.Config(dead)); // retries: 2 (default)

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        var failures = new List<long>();
        foreach (var d in dead) failures.Add((await lb.WaitForStatusAsync(d, s => s.InFlight() == 0)).Failures());
        Assert.Equal(3, failures.Sum()); // the first attempt and two retries, each on another backend
        Assert.DoesNotContain(2, failures);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Get_RetriesZero_FailedAttemptNotRetried502(bool refused)
    {
        await using var bad = refused ? await StoppedAsync() : await TestBackend.StartAsync("reset", handler: Reset);
        await using var good = await TestBackend.StartAsync("good");
        var config = Balancer.Config(bad, good);
        config["retries"] = 0;
        await using var lb = await Balancer.StartAsync(config);

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(0, good.Requests);
        // The next request goes on to the other backend: only retries were switched off.
        Assert.Equal("backend-good", await lb.Client.GetStringAsync("/"));
    }

    [Fact]
    public async Task Get_Backend503_PassedThroughUnchangedNotRetried()
    {
        await using var busy = await TestBackend.StartAsync("busy", handler: async context =>
        {
            context.Response.StatusCode = 503;
            context.Response.Headers["X-Busy"] = "yes";
            await context.Response.WriteAsync("busy, come back later");
        });
        await using var good = await TestBackend.StartAsync("good");
        await using var lb = await Balancer.StartAsync(Balancer.Config(busy, good));

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("busy, come back later", await response.Content.ReadAsStringAsync());
        Assert.Equal("yes", Assert.Single(response.Headers.GetValues("X-Busy")));
        Assert.Equal(1, busy.Requests);
        Assert.Equal(0, good.Requests);
        var status = await lb.WaitForStatusAsync(busy, s => s.InFlight() == 0);
        Assert.Equal(1, status.Failures()); // passed through, yet a passive failure
    }

    [Fact]
    public async Task Get_OneOfThreeBackendsStoppedUnderLoad_NoClientRequestFails()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var c = await TestBackend.StartAsync("c");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b, c));
        const int clients = 8, perClient = 250;
        var done = 0;
        var failed = new ConcurrentQueue<string>();
        var aThird = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        async Task ClientAsync()
        {
            for (var i = 0; i < perClient; i++)
            {
                try
                {
                    using var response = await lb.Client.GetAsync("/");
                    var body = await response.Content.ReadAsStringAsync();
                    if (!response.IsSuccessStatusCode) failed.Enqueue($"{(int)response.StatusCode} {body}");
                }
                catch (Exception e)
                {
                    failed.Enqueue(e.ToString());
                }
                if (Interlocked.Increment(ref done) == clients * perClient / 3) aThird.TrySetResult();
            }
        }

        var load = Enumerable.Range(0, clients).Select(_ => Task.Run(ClientAsync)).ToArray();
        await aThird.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await b.StopAsync();
        var othersAtStop = a.Requests + c.Requests;
        await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Empty(failed);
        Assert.True(a.Requests + c.Requests - othersAtStop > clients * perClient / 3,
            $"the load went on after the stop: {a.Requests + c.Requests - othersAtStop} more requests");
        Assert.True(b.Requests > 0);
        Assert.True((await lb.RequiredStatusAsync(b)).Failures() > 0, "b was tried after it stopped: the failures were retried");
    }

    // A request body HttpClient cannot rewind or measure: sent chunked, readable once.
    sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
