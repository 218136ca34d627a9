using System.Net;
using LoadBalancer.Forwarding;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Forwarding;

// The request transform on a DefaultHttpContext: what the backend would receive.
public sealed class ForwardedHeadersTests
{
    readonly DefaultHttpContext _context = new();

    public ForwardedHeadersTests()
    {
        _context.Request.Method = "GET";
        _context.Request.Scheme = "http";
        _context.Request.Host = new HostString("lb.example:8080");
        _context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.10");
    }

    async Task<HttpRequestMessage> TransformAsync()
    {
        var proxyRequest = new HttpRequestMessage();
        await ForwardedHeaders.Instance.TransformRequestAsync(_context, proxyRequest, "http://backend:8000", CancellationToken.None);
        return proxyRequest;
    }

    static string[] Values(HttpRequestMessage request, string name) =>
        request.Headers.NonValidated.TryGetValues(name, out var values) ? values.ToArray() : [];

    [Fact]
    public async Task TransformRequestAsync_NoForwardedFor_TheClientAddress()
    {
        var request = await TransformAsync();

        Assert.Equal(["192.0.2.10"], Values(request, "X-Forwarded-For"));
    }

    [Fact]
    public async Task TransformRequestAsync_ClientSentForwardedFor_AppendsOnOneLine()
    {
        _context.Request.Headers["X-Forwarded-For"] = "203.0.113.7, 10.0.0.1";

        var request = await TransformAsync();

        Assert.Equal(["203.0.113.7, 10.0.0.1, 192.0.2.10"], Values(request, "X-Forwarded-For"));
    }

    [Fact]
    public async Task TransformRequestAsync_ClientSentForwardedForTwice_JoinedOnOneLine()
    {
        _context.Request.Headers.Append("X-Forwarded-For", "203.0.113.7");
        _context.Request.Headers.Append("X-Forwarded-For", "10.0.0.1");

        var request = await TransformAsync();

        Assert.Equal(["203.0.113.7, 10.0.0.1, 192.0.2.10"], Values(request, "X-Forwarded-For"));
    }

    [Fact]
    public async Task TransformRequestAsync_Ipv4MappedClient_PlainIpv4()
    {
        _context.Connection.RemoteIpAddress = IPAddress.Parse("::ffff:127.0.0.1");

        Assert.Equal(["127.0.0.1"], Values(await TransformAsync(), "X-Forwarded-For"));
    }

    [Fact]
    public async Task TransformRequestAsync_ClientSentProtoAndHost_Replaced()
    {
        _context.Request.Headers["X-Forwarded-Proto"] = "https";
        _context.Request.Headers["X-Forwarded-Host"] = "evil.example";

        var request = await TransformAsync();

        Assert.Equal(["http"], Values(request, "X-Forwarded-Proto"));
        Assert.Equal(["lb.example:8080"], Values(request, "X-Forwarded-Host")); // with its port
    }

    [Fact]
    public async Task TransformRequestAsync_HopByHopHeaders_NotForwarded()
    {
        var headers = _context.Request.Headers;
        headers.Connection = "keep-alive";
        headers["Keep-Alive"] = "timeout=5";
        headers["Proxy-Connection"] = "keep-alive";
        headers["TE"] = "trailers";
        headers["Trailer"] = "X-Checksum";
        headers["Upgrade"] = "h2c";
        headers["X-Custom"] = "kept";
        headers.Accept = "application/json";

        var request = await TransformAsync();

        foreach (var name in new[] { "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade" })
            Assert.Empty(Values(request, name));
        Assert.Equal(["kept"], Values(request, "X-Custom"));
        Assert.Equal(["application/json"], Values(request, "Accept"));
    }

    [Fact]
    public async Task TransformRequestAsync_HeadersNamedInConnection_NotForwarded()
    {
        var headers = _context.Request.Headers;
        headers.Connection = "X-Secret,x-other";
        headers["X-Secret"] = "s";
        headers["X-Other"] = "o";
        headers["X-Keep"] = "k";

        var request = await TransformAsync();

        Assert.Empty(Values(request, "X-Secret"));
        Assert.Empty(Values(request, "X-Other"));
        Assert.Equal(["k"], Values(request, "X-Keep"));
    }
}
