using System.Net;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// Contract, Forwarding: "X-Request-Id: passed through when the client sent one, else generated;
// the backend and the client's response both carry it." traceparent passes untouched.
public sealed class RequestIdTests
{
    // Answers with the ids the backend received, one per line: X-Request-Id, traceparent, tracestate.
    static readonly RequestDelegate Echo = context => context.Response.WriteAsync(string.Join("\n",
        context.Request.Headers["X-Request-Id"].ToString(), context.Request.Headers["traceparent"].ToString(),
        context.Request.Headers["tracestate"].ToString()));

    static async Task<(HttpResponseMessage Response, string[] Seen)> SendAsync(Balancer lb, Action<HttpRequestMessage> headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/");
        headers(request);
        var response = await lb.Client.SendAsync(request);
        return (response, (await response.Content.ReadAsStringAsync()).Split('\n'));
    }

    static string Returned(HttpResponseMessage response) => Assert.Single(response.Headers.GetValues("X-Request-Id"));

    [Fact]
    public async Task Get_ClientSentAnId_TheBackendAndTheResponseCarryIt()
    {
        await using var backend = await TestBackend.StartAsync("a", handler: Echo);
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        var (response, seen) = await SendAsync(lb, r => r.Headers.Add("X-Request-Id", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"));

        Assert.Equal("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", seen[0]);
        Assert.Equal("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", Returned(response));
    }

    [Fact]
    public async Task Get_NoId_OneGeneratedForTheBackendAndTheResponse()
    {
        await using var backend = await TestBackend.StartAsync("a", handler: Echo);
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        var (first, seen) = await SendAsync(lb, _ => { });
        var (second, _) = await SendAsync(lb, _ => { });

        Assert.Matches("^[0-9a-f]{16}$", seen[0]);
        Assert.Equal(seen[0], Returned(first));
        Assert.NotEqual(Returned(first), Returned(second));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("x-129")]
    public async Task Get_UnusableId_ReplacedForTheBackendAndTheResponse(string kind)
    {
        await using var backend = await TestBackend.StartAsync("a", handler: Echo);
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        var (response, seen) = await SendAsync(lb, r =>
        {
            switch (kind)
            {
                case "has space": r.Headers.TryAddWithoutValidation("X-Request-Id", "has space"); break;
                default: r.Headers.Add("X-Request-Id", new string('x', 129)); break;
            }
        });

        Assert.Matches("^[0-9a-f]{16}$", seen[0]);
        Assert.Equal(seen[0], Returned(response));
    }

    [Fact]
    public async Task Get_TwoIdHeaderLines_OneNewIdForTheBackendAndTheResponse()
    {
        await using var backend = await TestBackend.StartAsync("a", handler: Echo);
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        var response = await RawHttp.SendAsync(lb.App.ClientUri(),
            $"GET / HTTP/1.1\r\nHost: {lb.App.ClientUri().Authority}\r\nX-Request-Id: one\r\nX-Request-Id: two\r\n");

        var seen = response.Body.Split('\n')[0];
        Assert.Matches("^[0-9a-f]{16}$", seen);
        Assert.Equal(seen, Assert.Single(response.Headers, h => h.Key.Equals("X-Request-Id", StringComparison.OrdinalIgnoreCase)).Value);
    }

    [Fact]
    public async Task Get_TraceContext_PassedThroughUntouched()
    {
        const string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        const string tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
        await using var backend = await TestBackend.StartAsync("a", handler: Echo);
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        var (_, seen) = await SendAsync(lb, r =>
        {
            r.Headers.TryAddWithoutValidation("traceparent", traceparent);
            r.Headers.TryAddWithoutValidation("tracestate", tracestate);
        });

        Assert.Equal(traceparent, seen[1]);
        Assert.Equal(tracestate, seen[2]);
    }

    [Fact]
    public async Task Get_BackendAnswersWithItsOwnId_TheClientGetsTheRequestsId()
    {
        await using var backend = await TestBackend.StartAsync("a", handler: context =>
        {
            context.Response.Headers["X-Request-Id"] = "the-backends-own";
            return context.Response.WriteAsync("ok");
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        var (response, _) = await SendAsync(lb, r => r.Headers.Add("X-Request-Id", "mine"));

        Assert.Equal("mine", Returned(response));
    }

    [Fact]
    public async Task Get_BalancerAnswersItself_TheResponseCarriesTheId()
    {
        var dead = await TestBackend.StartAsync("dead");
        await dead.StopAsync();
        var config = Balancer.Config(dead);
        config["retries"] = 0;
        await using var lb = await Balancer.StartAsync(config);

        var (response, _) = await SendAsync(lb, r => r.Headers.Add("X-Request-Id", "mine"));

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("mine", Returned(response));
    }
}
