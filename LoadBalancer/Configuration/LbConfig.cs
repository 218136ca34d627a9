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
}

/// <param name="Url">As written in lb.json: the label in /status and /metrics.</param>
/// <param name="Key">Normalised (lower-case scheme and host, explicit port, no trailing slash):
/// what makes two entries the same backend.</param>
public sealed record BackendConfig(string Url, string Key, Uri Uri, int Weight);

public sealed record HealthCheckConfig(
    string Path, TimeSpan Interval, TimeSpan Timeout, int HealthyThreshold, int UnhealthyThreshold);

public sealed record PassiveHealthConfig(int ConsecutiveFailures, TimeSpan EjectFor);

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
