using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Forwarding;

// YARP's default transform (copy method, path, query, headers and body; drop the hop-by-hop
// headers; Host becomes the backend's) plus the X-Forwarded-* headers:
//   X-Forwarded-For:   the client's value, then ", " and the client address, as one line
//   X-Forwarded-Proto: the scheme the client used (replaces any client value)
//   X-Forwarded-Host:  the client's Host header, port included (replaces any client value)
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

    const string ForwardedFor = "X-Forwarded-For";
    const string ForwardedProto = "X-Forwarded-Proto";
    const string ForwardedHost = "X-Forwarded-Host";
}
