using System.Net;
using System.Security.Cryptography;
using System.Text;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Admin;

// Who may change state through the admin listener (POST /backends/drain, /backends/undrain).
// Pure: the token in force, the Authorization header as sent, whether the peer is loopback.
//   adminToken set:     "Authorization: Bearer <token>" required, from any peer; else 401.
//   adminToken not set: loopback peers only; else 403 (set adminToken to allow remote operators).
// A browser on this machine is a loopback peer too, so "loopback" also asks that the request not
// come from a web page elsewhere (FromAnotherSite: 403 whatever the token) and that its Host be
// this machine's own name (LocalHost): a page on evil.example whose name is rebound to 127.0.0.1
// (DNS rebinding) is same-origin to the browser and may send any header, but not another Host.
public static class AdminAuth
{
    /// <summary>Null when allowed, else the refusal.</summary>
    public static DrainAnswer? Check(string? adminToken, string? authorization, bool loopback)
    {
        if (adminToken is null) return loopback ? null : DrainAnswer.Forbidden;
        const string Bearer = "Bearer ";
        if (authorization is null || !authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase)) return DrainAnswer.Unauthorized;
        var given = Encoding.UTF8.GetBytes(authorization[Bearer.Length..].Trim());
        var wanted = Encoding.UTF8.GetBytes(adminToken);
        // Constant time, so the answer's timing says nothing about how much of a guess was right.
        return CryptographicOperations.FixedTimeEquals(given, wanted) ? null : DrainAnswer.Unauthorized;
    }

    /// <summary>Did a browser send this from a page that is not the admin listener's own (the
    /// dashboard's POSTs are same-origin)? Browsers send Sec-Fetch-Site and, on a POST, Origin;
    /// other clients (curl, scripts) send neither, so they are never refused here.</summary>
    public static bool FromAnotherSite(string? origin, string? secFetchSite, string? host)
    {
        if (secFetchSite is "cross-site" or "same-site") return true;
        if (string.IsNullOrEmpty(origin)) return false;
        return !Uri.TryCreate(origin, UriKind.Absolute, out var o) // "null" (a sandboxed page, a file) too
            || !string.Equals(o.Authority, host, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Is the Host header this machine by address or as localhost (what a user types to
    /// reach a loopback listener), not a name that could have been rebound to it?</summary>
    public static bool LocalHost(string? host)
    {
        if (string.IsNullOrEmpty(host)) return true; // HTTP/1.0 without Host: no browser sends that
        var name = host.StartsWith('[') ? host[1..host.IndexOf(']', StringComparison.Ordinal)]
            : host.LastIndexOf(':') is var colon and > 0 ? host[..colon] : host;
        return IPAddress.TryParse(name, out _) || name.Equals("localhost", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Is the peer this machine (127.0.0.0/8, ::1, or either mapped into IPv6)?</summary>
    public static bool IsLoopback(IPAddress? peer) =>
        peer is not null && IPAddress.IsLoopback(peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4() : peer);
}
