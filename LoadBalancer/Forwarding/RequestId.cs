using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Forwarding;

// X-Request-Id (contract, Forwarding): the client's value when it sent a usable one, else a new
// one. Usable: one header line of 1 to 128 visible ASCII characters (0x21-0x7E), so it can sit in
// a log line unquoted and cannot carry a newline or a megabyte. New: 16 hex characters, 64 random
// bits (Random.Shared: per-thread and fast; an id, not a secret). The request header is the
// carrier: set here, YARP copies it to the backend with the other headers, and the client's
// response gets it back (Echo, after the response headers are final). traceparent is not touched.
public static class RequestId
{
    public const string Header = "X-Request-Id";
    public const int MaxLength = 128;

    /// <summary>The request's id: the client's when usable, else a new one, which replaces
    /// whatever the client sent so that the backend sees the same id as the log.</summary>
    public static string Assign(HttpContext context)
    {
        var headers = context.Request.Headers;
        var sent = headers[Header];
        if (sent.Count == 1 && sent[0] is { } value && IsUsable(value)) return value;
        var id = New();
        headers[Header] = id;
        return id;
    }

    /// <summary>The response carries the request's id; call once its headers are final (a
    /// backend's were copied, or an error response was cleared and written).</summary>
    public static void Echo(HttpContext context)
    {
        var id = context.Request.Headers[Header];
        if (id.Count > 0) context.Response.Headers[Header] = id;
    }

    public static bool IsUsable(string value)
    {
        if (value.Length is 0 or > MaxLength) return false;
        foreach (var c in value)
            if (c is < '!' or > '~') return false;
        return true;
    }

    public static string New()
    {
        Span<byte> bytes = stackalloc byte[8];
        Random.Shared.NextBytes(bytes);
        return Convert.ToHexStringLower(bytes);
    }
}
