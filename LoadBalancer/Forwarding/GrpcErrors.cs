using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoadBalancer.Forwarding;

// gRPC's side of the balancer's own answers. A gRPC client reads grpc-status, not the HTTP
// status, so when the balancer itself ends a gRPC request (content-type application/grpc...)
// it answers as a gRPC server would: HTTP 200, trailers-only (one HEADERS frame, no body) with
// grpc-status and a percent-encoded grpc-message. The client then sees RpcException with
// UNAVAILABLE (14: no backend, every attempt failed) or DEADLINE_EXCEEDED (4: timed out), not
// "Bad gRPC response. HTTP status code: 502". Also: a backend's own grpc-status 14 is its
// "503", a passive failure like one (contract, "What counts against a backend").
public static class GrpcErrors
{
    public const int Unavailable = 14, DeadlineExceeded = 4, Internal = 13, Unimplemented = 12, Unknown = 2;

    public static bool IsGrpc(HttpRequest request) =>
        request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>The gRPC status for what the balancer would have answered with this HTTP status.</summary>
    public static int StatusFor(int httpStatus) => httpStatus switch
    {
        StatusCodes.Status502BadGateway or StatusCodes.Status503ServiceUnavailable => Unavailable,
        StatusCodes.Status504GatewayTimeout or StatusCodes.Status408RequestTimeout => DeadlineExceeded,
        StatusCodes.Status400BadRequest => Internal, // gRPC's own HTTP-to-status mapping
        StatusCodes.Status501NotImplemented => Unimplemented,
        _ => Unknown,
    };

    /// <summary>Trailers-only: Kestrel sends headers and ends the stream, as no body follows.</summary>
    /// <param name="close">As for any refusal: nothing more is read from this connection (HTTP/1.1; gRPC-Web).</param>
    public static Task WriteAsync(HttpContext context, int httpStatus, string text, string? retryAfter, bool close)
    {
        var response = context.Response;
        response.Clear();
        RequestId.Echo(context); // cleared with the rest: the client still gets the request's id
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = StatusFor(httpStatus).ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = Encode(text);
        if (retryAfter is not null) response.Headers.RetryAfter = retryAfter;
        if (close) response.Headers.Connection = "close";
        return Task.CompletedTask;
    }

    /// <summary>Did the backend's response end with grpc-status 14 (in its trailers, or trailers-only in its headers)?</summary>
    public static bool BackendUnavailable(HttpContext context) =>
        IsGrpc(context.Request)
        && (context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is { } trailers && trailers.TryGetValue("grpc-status", out var t) ? t : context.Response.Headers["grpc-status"])
            == "14";

    // The label values a grpc-status may become: gRPC's seventeen codes, and two more. A backend
    // may send anything in grpc-status; a label made of it would let one backend grow /metrics
    // without bound, so anything else is "other".
    static readonly string[] Codes = [.. Enumerable.Range(0, 17).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture))];
    public const string NoStatus = "none", OtherStatus = "other";

    /// <summary>The grpc-status the client got, for the metric: from the trailers, or from the
    /// headers of a trailers-only answer (the balancer's own among them); "none" when the call
    /// ended without one (reset, or the client left); "other" when it is not one of gRPC's codes.</summary>
    public static string FinalStatus(HttpContext context)
    {
        var value = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is { } trailers && trailers.TryGetValue("grpc-status", out var t)
            ? t : context.Response.Headers["grpc-status"];
        if (value.Count == 0) return NoStatus;
        return value.Count == 1 && int.TryParse(value[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code)
            && code is >= 0 and < 17 && value[0]!.Length <= 2 ? Codes[code] : OtherStatus;
    }

    // grpc-message: percent-encode everything outside printable ASCII, and '%' itself (gRPC over HTTP/2 spec).
    static string Encode(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%') sb.Append((char)b);
            else sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
