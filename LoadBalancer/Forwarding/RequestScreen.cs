using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoadBalancer.Forwarding;

// Requests the balancer will not forward, answered by the balancer itself before any backend is
// asked for (contract, "What counts against a backend"). Each is something a client can send that
// would otherwise fail inside the forwarder (and was once counted against a backend: nine
// CONNECTs ejected every backend) or reach a backend as something else (request smuggling):
//
//   CONNECT host:443                          501  a reverse proxy tunnels nothing on request
//   OPTIONS *, authority-form targets          400  only origin form (/path) and absolute form
//   control characters in the target           400  Kestrel lets \x01-\x1f and \x7f through
//                                                   (nginx refuses them since 1.21.1)
//   Content-Length that is not just digits     400  Kestrel reads "+4" as 4; a backend may not
//   Content-Length and Transfer-Encoding       400  RFC 9112 6.3: a smuggling attempt (nginx: 400).
//                                                   Kestrel (10) gets there first today: it renames
//                                                   Content-Length to X-Content-Length, reads the
//                                                   body chunked and closes after the response
//   Transfer-Encoding other than "chunked"     501  "gzip, chunked": a backend that does not know
//                                                   gzip reads the chunks as the next request
//
// Every refusal closes the client connection after the answer: the rest of what the client sent
// on it (a body, a request hidden in one) is never read as a request. Kestrel itself already
// refuses malformed request lines and headers, a final coding other than chunked, oversized or
// too many headers (431) and slow headers (limits.requestHeadersTimeout).
public static class RequestScreen
{
    public readonly record struct Refusal(int Status, string Text);

    public static Refusal? Check(HttpContext context)
    {
        var request = context.Request;
        if (HttpMethods.IsConnect(request.Method))
            return new(StatusCodes.Status501NotImplemented, "CONNECT is not supported: this is a reverse proxy, not a forward proxy");

        // Kestrel always sets the raw target; a hand-made context (a test) may leave it empty.
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (!string.IsNullOrEmpty(target) && !target.StartsWith('/') && !IsAbsoluteForm(target))
            return new(StatusCodes.Status400BadRequest, "unsupported request target: only /path or an absolute http(s) URL is forwarded");
        if (target is not null && target.AsSpan().IndexOfAnyInRange('\0', ' ') >= 0 || target?.Contains('\x7f') == true)
            return new(StatusCodes.Status400BadRequest, "invalid request target: control characters");

        // RFC 9110 8.6: Content-Length = 1*DIGIT. Kestrel accepts "+4" as 4; a backend or a cache
        // in front of it may read it otherwise, and the bytes after the body become a request.
        if (request.Headers.ContentLength is not null
            && !IsDigits(request.Headers["Content-Length"].ToString()))
            return new(StatusCodes.Status400BadRequest, "invalid Content-Length: digits only");

        // HTTP/2 and 3 frame bodies themselves (and forbid Transfer-Encoding); only HTTP/1.x can disagree.
        if (HttpProtocol.IsHttp11(request.Protocol) || HttpProtocol.IsHttp10(request.Protocol))
        {
            var te = request.Headers.TransferEncoding;
            if (te.Count > 0)
            {
                if (request.Headers.ContainsKey("Content-Length"))
                    return new(StatusCodes.Status400BadRequest, "both Content-Length and Transfer-Encoding: the request's length is ambiguous");
                if (te.Count != 1 || !string.Equals(te[0]?.Trim(), "chunked", StringComparison.OrdinalIgnoreCase))
                    return new(StatusCodes.Status501NotImplemented, $"Transfer-Encoding \"{Clip(string.Join(", ", te.ToArray()))}\" is not supported: only chunked");
            }
        }
        return null;
    }

    static bool IsDigits(string s) => s.Length > 0 && !s.AsSpan().ContainsAnyExceptInRange('0', '9');

    static string Clip(string s) => s.Length <= 64 ? s : s[..64] + "...";

    static bool IsAbsoluteForm(string target) =>
        target.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || target.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
}
