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

    /// <summary>limits.maxInFlightPerBackend, queue.*, retryBudget.*, slowStart: the admission rules (issue 12).</summary>
    public AdmissionConfig Admission { get; init; } = AdmissionConfig.Default;
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
}

/// <summary>json: one object per line; combined: nginx's combined format.</summary>
public enum AccessLogFormat { Json, Combined }

public static class BalancingNames
{
    public const string RoundRobin = "round-robin";
    public const string LeastConnections = "least-connections";
    public const string PowerOfTwo = "power-of-two";
    public const string Random = "random";

    public static readonly string[] All = [RoundRobin, LeastConnections, PowerOfTwo, Random];
}
