using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LoadBalancer.Configuration;

// The whole of lb.json after parsing and validation. Immutable: the config watcher
// builds a new one on every change and hands it to the state task as a message.
public sealed record LbConfig(
    Uri Listen,
    Uri Admin,
    string Balancing,
    IReadOnlyList<BackendConfig> Backends,
    HealthCheckConfig HealthCheck,
    PassiveHealthConfig PassiveHealth,
    PoolConfig Pool,
    TimeSpan RequestTimeout,
    int Retries,
    TimeSpan StreamIdleTimeout,
    TimeSpan TunnelIdleTimeout,
    LimitsConfig Limits)
{
    /// <summary>accessLog.*: off unless a path is set.</summary>
    public AccessLogConfig AccessLog { get; init; } = AccessLogConfig.Off;

    /// <summary>tls.certificate and tls.key for an https listen (null on http); both apply at startup only.</summary>
    public TlsConfig? Tls { get; init; }

    /// <summary>listenProtocols: Http2 is h2 by ALPN on https, prior-knowledge h2c on http.</summary>
    public HttpProtocols ListenProtocols { get; init; } = HttpProtocols.Http1;

    /// <summary>adminToken: when set, admin POSTs need "Authorization: Bearer" it. Never written to
    /// the journal (JsonIgnore) nor to a log line.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? AdminToken { get; init; }

    /// <summary>journal.*: the state journal, off unless a path is set. Applies at startup only.</summary>
    public JournalConfig Journal { get; init; } = JournalConfig.Off;

    /// <summary>limits.maxInFlightPerBackend, queue.*, retryBudget.*, slowStart: the admission rules (issue 12).</summary>
    public AdmissionConfig Admission { get; init; } = AdmissionConfig.Default;

    /// <summary>hashKey: what balancing consistent-hash hashes (client-ip by default).</summary>
    public HashKeyConfig HashKey { get; init; } = HashKeyConfig.Default;

    /// <summary>hashBalanceFactor: bounded load for consistent-hash (0: off).</summary>
    public double HashBalanceFactor { get; init; } = 1.25;

    /// <summary>affinity.*: cookie stickiness over any policy; null: off.</summary>
    public AffinityConfig? Affinity { get; init; }

    /// <summary>discovery.*: how backends with discover "dns" are resolved.</summary>
    public DiscoveryConfig Discovery { get; init; } = DiscoveryConfig.Default;
}

/// <summary>Where consistent-hash finds a request's key: a header, a cookie, the client address or the path.</summary>
public sealed record HashKeyConfig(HashKeySource Source, string? Name)
{
    public static readonly HashKeyConfig Default = new(HashKeySource.ClientIp, null);

    public override string ToString() => Source switch
    {
        HashKeySource.Header => $"header:{Name}",
        HashKeySource.Cookie => $"cookie:{Name}",
        HashKeySource.Path => "path",
        _ => "client-ip",
    };
}

public enum HashKeySource { ClientIp, Header, Cookie, Path }

/// <summary>affinity.*: the cookie's name, the HMAC secret (null: one random per process, so
/// instances do not agree) and its Max-Age (null: a session cookie).</summary>
public sealed record AffinityConfig(string Cookie, string? Secret, TimeSpan? MaxAge);

/// <summary>discovery.*: how often discovered hosts are resolved (at most; a shorter record TTL
/// comes sooner) and which nameservers ask ("ip:port" joined by commas; empty: the system's).</summary>
public sealed record DiscoveryConfig(TimeSpan Interval, string Nameservers)
{
    public static readonly DiscoveryConfig Default = new(TimeSpan.FromSeconds(10), "");

    public System.Net.IPEndPoint[] NameserverEndPoints() =>
        Nameservers.Length == 0 ? [] : Nameservers.Split(',').Select(System.Net.IPEndPoint.Parse).ToArray();
}

/// <summary>Where the state journal goes (a full path; null: off) and the size at which it is
/// rotated once (to Path + ".1", replacing an older one).</summary>
public sealed record JournalConfig(string? Path, long MaxBytes)
{
    public const long DefaultMaxBytes = 100L * 1024 * 1024;
    public static readonly JournalConfig Off = new(null, DefaultMaxBytes);
    public bool On => Path is not null;
}

/// <summary>The admission rules the state task applies to every pick (Pipeline/Admission.cs,
/// RetryBudget.cs, SlowStart.cs). MaxInFlightPerBackend 0: no limit; SlowStart zero: off.</summary>
public sealed record AdmissionConfig(
    int MaxInFlightPerBackend, int QueueSize, TimeSpan QueueTimeout, int RetryBudgetPercent, int RetryBudgetMinPerSecond, TimeSpan SlowStart)
{
    public static readonly AdmissionConfig Default = new(0, 1000, TimeSpan.FromSeconds(5), 20, 10, TimeSpan.Zero);
}

/// <summary>PEM files, as absolute paths (lb.json names them relative to its own folder).</summary>
public sealed record TlsConfig(string Certificate, string Key);

/// <param name="Url">As written in lb.json: the label in /status and /metrics.</param>
/// <param name="Key">Normalised (lower-case scheme and host, explicit port, no trailing slash):
/// what makes two entries the same backend.</param>
public sealed record BackendConfig(string Url, string Key, Uri Uri, int Weight)
{
    /// <summary>backends[].protocol: how the balancer talks to it.</summary>
    public BackendProtocol Protocol { get; init; } = BackendProtocol.Http1;

    /// <summary>backends[].tls: how an https backend's certificate is checked (null: system trust, URL host).</summary>
    public BackendTlsConfig? Tls { get; init; }

    /// <summary>backends[].maxInFlight: null means limits.maxInFlightPerBackend; 0 means no limit.</summary>
    public int? MaxInFlight { get; init; }

    /// <summary>backends[].discover "dns": the URL's host is resolved, each address one backend.</summary>
    public bool Discover { get; init; }

    /// <summary>For one address of a discovered host: "ip:port" (null for a backend from lb.json as it is).</summary>
    public string? Address { get; init; }

    /// <summary>What makes two backends the same: Key, and for a discovered one also its address.</summary>
    public string Identity => Address is null ? Key : $"{Key}@{Address}";
}

/// <summary>http1 (HTTP/1.1), h2c (HTTP/2 with prior knowledge, http://) or h2 (HTTP/2 by ALPN, https://).</summary>
public enum BackendProtocol { Http1, H2c, H2 }

/// <param name="Ca">tls.ca's PEM text (its certificates are the only roots trusted), or null for the system store.
/// The text, not the path, so that an edited CA file shows as a changed backend on reload.</param>
/// <param name="ServerName">SNI and the name the certificate must carry; null: the URL's host.</param>
public sealed record BackendTlsConfig(string? Ca, string? ServerName, bool InsecureSkipVerify);

public sealed record HealthCheckConfig(
    string Path, TimeSpan Interval, TimeSpan Timeout, int HealthyThreshold, int UnhealthyThreshold);

public sealed record PassiveHealthConfig(int ConsecutiveFailures, TimeSpan EjectFor)
{
    /// <summary>The most backends passive health may eject at once, as a percentage of all (one always may be).</summary>
    public int MaxEjectionPercent { get; init; } = 50;
}

public sealed record PoolConfig(
    int MaxConnectionsPerBackend, TimeSpan IdleTimeout, TimeSpan Lifetime, TimeSpan ConnectTimeout);

/// <summary>What one client may hold: open connections (more wait in the kernel's accept queue)
/// and how long it may take to send its request headers (slow-loris).</summary>
public sealed record LimitsConfig(int MaxClientConnections, TimeSpan RequestHeadersTimeout)
{
    public static readonly LimitsConfig Default = new(10_000, TimeSpan.FromSeconds(10));
}

/// <summary>Where the access log goes and how its lines look.</summary>
/// <param name="Path">null: off; "-": stdout; else a full path (lb.json's folder resolves a relative one).</param>
public sealed record AccessLogConfig(string? Path, AccessLogFormat Format)
{
    public static readonly AccessLogConfig Off = new(null, AccessLogFormat.Json);
    public bool On => Path is not null;
    public bool ToStdout => Path == StdoutPath;
    public const string StdoutPath = "-";

    /// <summary>The format as lb.json spells it.</summary>
    public static string Name(AccessLogFormat f) => f == AccessLogFormat.Combined ? "combined" : "json";
}

/// <summary>json: one object per line; combined: nginx's combined format.</summary>
public enum AccessLogFormat { Json, Combined }

public static class BalancingNames
{
    public const string RoundRobin = "round-robin";
    public const string LeastConnections = "least-connections";
    public const string PowerOfTwo = "power-of-two";
    public const string Random = "random";
    public const string ConsistentHash = "consistent-hash";

    public static readonly string[] All = [RoundRobin, LeastConnections, PowerOfTwo, Random, ConsistentHash];
}
