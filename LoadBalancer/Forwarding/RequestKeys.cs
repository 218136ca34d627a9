using System.Globalization;
using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace LoadBalancer.Forwarding;

// What a request carries into its pick (RequestKey): the hash of its hashKey when balancing is
// consistent-hash, and its affinity cookie when affinity is on. Read on the handler's thread, so
// the state task gets a 64-bit hash, never the key itself: a huge header costs one pass over
// it here and nothing is kept. An affinity cookie that cannot be a token (wrong length) is
// dropped here too; one that can is checked by the state task in constant time.
// Rules is immutable; the ConfigWatcher swaps it whole on a reload (as it hands the ticker a new
// interval), and each request reads it once.
public sealed class RequestKeys(LbConfig config)
{
    volatile Rules _rules = Rules.From(config);

    public Rules Current => _rules;

    /// <summary>By the ConfigWatcher, with a configuration it is applying.</summary>
    internal void Apply(LbConfig next) => _rules = Rules.From(next);

    /// <param name="Hash">hashKey, when balancing is consistent-hash; else null.</param>
    /// <param name="Cookie">affinity.cookie; null: affinity off.</param>
    /// <param name="Attributes">What follows the cookie's value in Set-Cookie.</param>
    public sealed record Rules(HashKeyConfig? Hash, string? Cookie, string Attributes)
    {
        /// <summary>No hash key, no affinity.</summary>
        public static readonly Rules None = new(null, null, "");

        public static Rules From(LbConfig c) => new(
            c.Balancing == BalancingNames.ConsistentHash ? c.HashKey : null,
            c.Affinity?.Cookie,
            "; Path=/" + (c.Affinity?.MaxAge is { } age ? string.Create(CultureInfo.InvariantCulture, $"; Max-Age={(long)age.TotalSeconds}") : "")
                + "; HttpOnly; SameSite=Lax" + (c.Listen.Scheme == "https" ? "; Secure" : ""));

        public RequestKey Read(HttpContext context)
        {
            string? affinity = null;
            if (Cookie is not null && context.Request.Cookies.TryGetValue(Cookie, out var value) && Affinity.Plausible(value))
                affinity = value;
            return new RequestKey(Hash is null ? null : HashOf(context, Hash), affinity);
        }

        public string SetCookie(string token) => $"{Cookie}={token}{Attributes}";

        static ulong? HashOf(HttpContext context, HashKeyConfig key)
        {
            switch (key.Source)
            {
                case HashKeySource.Header:
                    if (!context.Request.Headers.TryGetValue(key.Name!, out var values)) return null;
                    var hash = KeyHash.Start;
                    var any = false;
                    foreach (var v in values)
                    {
                        if (string.IsNullOrEmpty(v)) continue;
                        if (any) hash = KeyHash.Add(hash, ",");
                        hash = KeyHash.Add(hash, v);
                        any = true;
                    }
                    return any ? KeyHash.Mix(hash) : null;
                case HashKeySource.Cookie:
                    return context.Request.Cookies.TryGetValue(key.Name!, out var cookie) && cookie.Length > 0 ? KeyHash.Of(cookie) : null;
                case HashKeySource.Path:
                    return KeyHash.Of(context.Request.Path.Value ?? "/");
                default:
                    if (context.Connection.RemoteIpAddress is not { } ip) return null;
                    if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
                    Span<byte> bytes = stackalloc byte[16];
                    return ip.TryWriteBytes(bytes, out var n) ? KeyHash.Of(bytes[..n]) : null;
            }
        }
    }

    /// <summary>The affinity cookie a response will set, if any: the handler sets Value after each
    /// pick and clears it when the attempt brought no response, so the balancer's own error
    /// answers set none.</summary>
    public sealed class PendingCookie
    {
        public string? Value { get; set; }

        public static PendingCookie On(HttpResponse response)
        {
            var pending = new PendingCookie();
            response.OnStarting(static state =>
            {
                var (p, r) = ((PendingCookie, HttpResponse))state;
                if (p.Value is { } v) r.Headers.Append(HeaderNames.SetCookie, v);
                return Task.CompletedTask;
            }, (pending, response));
            return pending;
        }
    }
}
