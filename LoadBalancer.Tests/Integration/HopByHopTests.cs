using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// Forwarding, "every header named in a Connection header" is hop-by-hop, in either direction,
// and a backend's Trailer header is not passed on HTTP/1.1 (no trailers follow it there).
public sealed class HopByHopTests
{
    // Kestrel limitation (ASP.NET Core 10): when Connection also holds keep-alive, close or
    // upgrade, Kestrel replaces the header's value with just that option before the app sees it
    // ("keep-alive, X-Secret" reads as "keep-alive"), so the other names are lost to us and those
    // headers are forwarded. Without those options the names arrive and are honoured.
    [Fact]
    public async Task Get_HeadersNamedInConnection_DoNotReachBackend()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var host = lb.App.ClientUri().Authority;

        var response = await RawHttp.SendAsync(lb.App.ClientUri(),
            $"GET /hop HTTP/1.1\r\nHost: {host}\r\nConnection: X-Secret,x-other\r\nX-Secret: s3cret\r\nX-Other: 1\r\nX-Keep: yes\r\n");
        var seen = Echo.Parse(response.Body);

        Assert.Equal(200, response.Status);
        Assert.False(seen.Has("X-Secret"), "X-Secret was named in Connection but reached the backend");
        Assert.False(seen.Has("X-Other"), "X-Other (lower-case in Connection) reached the backend");
        Assert.Equal(["yes"], seen.Lines("X-Keep"));
    }

    [Fact]
    public async Task Get_ConnectionNamesHostAndForwardedFor_HostAndForwardedForStillPass()
    {
        await using var a = await TestBackend.StartAsync("a", handler: Echo.Handler);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var host = lb.App.ClientUri().Authority;

        var response = await RawHttp.SendAsync(lb.App.ClientUri(),
            $"GET /hop HTTP/1.1\r\nHost: {host}\r\nConnection: Host, X-Forwarded-For, Content-Length\r\nX-Forwarded-For: 203.0.113.7\r\n");
        var seen = Echo.Parse(response.Body);

        Assert.Equal(200, response.Status);
        Assert.Equal([host], seen.Lines("Host"));
        Assert.Equal(["203.0.113.7, 127.0.0.1"], seen.Lines("X-Forwarded-For"));
    }

    [Fact]
    public async Task Get_BackendNamesHeadersInConnectionAndSendsTrailer_ClientSeesNeither()
    {
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            context.Response.Headers.Connection = "X-Internal";
            context.Response.Headers["X-Internal"] = "node-7";
            context.Response.Headers["X-Public"] = "yes";
            context.Response.Headers.Trailer = "X-Checksum";
            await context.Response.WriteAsync("body");
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var host = lb.App.ClientUri().Authority;

        var response = await RawHttp.SendAsync(lb.App.ClientUri(), $"GET / HTTP/1.1\r\nHost: {host}\r\n");

        Assert.Equal(200, response.Status);
        Assert.Equal("body", response.Body);
        Assert.Contains(response.Headers, h => h.Key == "X-Public");
        Assert.DoesNotContain(response.Headers, h => h.Key.Equals("X-Internal", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(response.Headers, h => h.Key.Equals("Trailer", StringComparison.OrdinalIgnoreCase));
    }
}
