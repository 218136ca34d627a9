using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Forwarding;

// YARP's default transform (copy method, path, query, headers and body; drop the hop-by-hop
// headers; Host becomes the backend's), the headers named in Connection dropped both ways, and
// the X-Forwarded-* headers:
//   X-Forwarded-For:   the client's value, then ", " and the client address, as one line
//   X-Forwarded-Proto: the scheme the client used (replaces any client value)
//   X-Forwarded-Host:  the client's Host header, port included (replaces any client value)
//   X-Request-Id:      set on the request by the handler (RequestId), copied like any header;
//                      the response carries the same id
public sealed class ForwardedHeaders : HttpTransformer
{
    public static readonly ForwardedHeaders Instance = new();

    // Hop-by-hop headers (RFC 9110 7.6.1) that must not reach the backend. YARP already drops
    // most; TE and Trailer are named here so the list is complete in one place.
    static readonly string[] HopByHop = ["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"];

    public override async ValueTask TransformRequestAsync(HttpContext context, HttpRequestMessage proxyRequest,
        string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(context, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);

        // Path and query exactly as the client sent them. YARP rebuilds them from Request.Path,
        // which Kestrel has decoded except for %2F, so "%2F" would reach the backend as "%252F"
        // (dotnet/yarp#1419). Only the usual origin form ("/path?query"); anything else keeps YARP's.
        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget is ['/', ..] raw)
            proxyRequest.RequestUri = new Uri(destinationPrefix.TrimEnd('/') + raw,
                new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });

        var headers = proxyRequest.Headers;
        var upgrade = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>()?.IsUpgradableRequest == true;
        if (!upgrade) // YARP re-adds Connection/Upgrade itself for a WebSocket tunnel
            foreach (var name in HopByHop) headers.Remove(name);
        // Headers the client named in Connection are hop-by-hop too (RFC 9110 7.6.1).
        foreach (var name in context.Request.Headers.GetCommaSeparatedValues(HeaderNames.Connection))
        {
            if (!IsRemovable(name) || upgrade && name.Equals("Upgrade", StringComparison.OrdinalIgnoreCase)) continue;
            headers.Remove(name);
            proxyRequest.Content?.Headers.Remove(name);
        }

        var client = context.Connection.RemoteIpAddress;
        if (client is { IsIPv4MappedToIPv6: true }) client = client.MapToIPv4();
        var prior = context.Request.Headers[ForwardedFor];
        headers.Remove(ForwardedFor);
        var address = client?.ToString() ?? "unknown";
        headers.TryAddWithoutValidation(ForwardedFor, prior.Count == 0 ? address : $"{string.Join(", ", prior.ToArray())}, {address}");

        headers.Remove(ForwardedProto);
        headers.TryAddWithoutValidation(ForwardedProto, context.Request.Scheme);
        headers.Remove(ForwardedHost);
        if (context.Request.Headers.Host.ToString() is { Length: > 0 } host)
            headers.TryAddWithoutValidation(ForwardedHost, host);
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext context, HttpResponseMessage? proxyResponse,
        CancellationToken cancellationToken)
    {
        // Response headers came: the rest of the exchange is no longer requestTimeout's.
        if (proxyResponse is not null) context.Features.Get<HeaderDeadline>()?.HeadersArrived();
        var copy = await base.TransformResponseAsync(context, proxyResponse, cancellationToken).ConfigureAwait(false);
        if (proxyResponse is null) return copy;
        RequestId.Echo(context); // the client gets the id the backend got, whatever the backend said

        // YARP drops the standard hop-by-hop headers; also drop the ones the backend named in its
        // Connection header, and Trailer on HTTP/1.x, where Kestrel sends no trailers to announce.
        var response = context.Response.Headers;
        foreach (var name in proxyResponse.Headers.Connection)
            if (IsRemovable(name)) response.Remove(name);
        if (!HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
            response.Remove(HeaderNames.Trailer);
        return copy;
    }

    // A Connection token names a header to drop, except the tokens that are options rather than
    // names and the headers that carry the message itself (a hostile "Connection: Host" must not
    // strip the Host header or the framing).
    static bool IsRemovable(string name) =>
        name.Length > 0
        && !name.Equals("close", StringComparison.OrdinalIgnoreCase)
        && !name.Equals("keep-alive", StringComparison.OrdinalIgnoreCase)
        && !name.Equals(HeaderNames.Host, StringComparison.OrdinalIgnoreCase)
        && !name.Equals(HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase)
        && !name.Equals(HeaderNames.ContentType, StringComparison.OrdinalIgnoreCase)
        && !name.Equals(HeaderNames.TransferEncoding, StringComparison.OrdinalIgnoreCase)
        && !name.StartsWith("X-Forwarded-", StringComparison.OrdinalIgnoreCase);

    const string ForwardedFor = "X-Forwarded-For";
    const string ForwardedProto = "X-Forwarded-Proto";
    const string ForwardedHost = "X-Forwarded-Host";
}
