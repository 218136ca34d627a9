using System.Net;
using System.Security.Cryptography;
using System.Text;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Admin;

// Who may change state through the admin listener (POST /backends/drain, /backends/undrain).
// Pure: the token in force, the Authorization header as sent, whether the peer is loopback.
//   adminToken set:     "Authorization: Bearer <token>" required, from any peer; else 401.
//   adminToken not set: loopback peers only; else 403 (set adminToken to allow remote operators).
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

    /// <summary>Is the peer this machine (127.0.0.0/8, ::1, or either mapped into IPv6)?</summary>
    public static bool IsLoopback(IPAddress? peer) =>
        peer is not null && IPAddress.IsLoopback(peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4() : peer);
}
