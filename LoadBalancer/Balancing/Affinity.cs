using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace LoadBalancer.Balancing;

// Cookie affinity's token: HMAC-SHA256 of the backend's identity (its normalised URL, plus the
// address for a discovered one) under affinity.secret, base64url. Balancers that share the
// secret compute the same token for the same backend, so a client's cookie means the same
// backend through any of them (yarp#1980 broke exactly this); without the secret a client
// cannot make a token that names a backend of its choosing. Pure.
public static class Affinity
{
    /// <summary>Base64url of 32 bytes, no padding.</summary>
    public const int TokenLength = 43;

    public static string Token(ReadOnlySpan<byte> secret, string identity) =>
        Base64Url.EncodeToString(HMACSHA256.HashData(secret, Encoding.UTF8.GetBytes(identity)));

    /// <summary>Constant-time: how much of a forged value matches says nothing about the token.</summary>
    public static bool Matches(string token, string cookie) =>
        CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(token.AsSpan()), MemoryMarshal.AsBytes(cookie.AsSpan()));

    /// <summary>A cookie value that could be a token at all (anything else is ignored before it reaches the state task).</summary>
    public static bool Plausible(string? value) => value is { Length: TokenLength };

    /// <summary>affinity.secret's bytes (without one, the table draws NewSecret).</summary>
    public static byte[] Secret(string secret) => Encoding.UTF8.GetBytes(secret);

    /// <summary>A new random secret (affinity.secret unset: one per process).</summary>
    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(32);
}
