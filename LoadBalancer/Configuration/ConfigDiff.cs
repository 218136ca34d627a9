using System.Globalization;

namespace LoadBalancer.Configuration;

// What a reload changed, in words for its log line: "pool.idleTimeout 1m -> 10s, requestTimeout
// 30s -> 5s, backends added: http://c:3". Pure: two configurations in, text out. Keys are spelt
// as in lb.json and the contract, so an operator can find them in the file.
public static class ConfigDiff
{
    public const string NoChange = "no setting changed";

    public static string Describe(LbConfig before, LbConfig after)
    {
        var changes = new List<string>();

        void Value<T>(string key, T a, T b)
        {
            if (!EqualityComparer<T>.Default.Equals(a, b))
                changes.Add(string.Create(CultureInfo.InvariantCulture, $"{key} {a} -> {b}"));
        }

        void Duration(string key, TimeSpan a, TimeSpan b)
        {
            if (a != b) changes.Add($"{key} {Durations.Format(a)} -> {Durations.Format(b)}");
        }

        Value("listen", before.Listen, after.Listen);
        Value("admin", before.Admin, after.Admin);
        Value("listenProtocols", ConfigLoader.ListenProtocolsText(before), ConfigLoader.ListenProtocolsText(after));
        Value("tls.certificate", before.Tls?.Certificate ?? "none", after.Tls?.Certificate ?? "none");
        Value("tls.key", before.Tls?.Key ?? "none", after.Tls?.Key ?? "none");
        Value("balancing", before.Balancing, after.Balancing);
        Backends(before.Backends, after.Backends, changes);
        var (hcA, hcB) = (before.HealthCheck, after.HealthCheck);
        Value("healthCheck.path", hcA.Path, hcB.Path);
        Duration("healthCheck.interval", hcA.Interval, hcB.Interval);
        Duration("healthCheck.timeout", hcA.Timeout, hcB.Timeout);
        Value("healthCheck.healthyThreshold", hcA.HealthyThreshold, hcB.HealthyThreshold);
        Value("healthCheck.unhealthyThreshold", hcA.UnhealthyThreshold, hcB.UnhealthyThreshold);
        Value("passiveHealth.consecutiveFailures", before.PassiveHealth.ConsecutiveFailures, after.PassiveHealth.ConsecutiveFailures);
        Duration("passiveHealth.ejectFor", before.PassiveHealth.EjectFor, after.PassiveHealth.EjectFor);
        Value("passiveHealth.maxEjectionPercent", before.PassiveHealth.MaxEjectionPercent, after.PassiveHealth.MaxEjectionPercent);
        var (poolA, poolB) = (before.Pool, after.Pool);
        Value("pool.maxConnectionsPerBackend", poolA.MaxConnectionsPerBackend, poolB.MaxConnectionsPerBackend);
        Duration("pool.idleTimeout", poolA.IdleTimeout, poolB.IdleTimeout);
        Duration("pool.lifetime", poolA.Lifetime, poolB.Lifetime);
        Duration("pool.connectTimeout", poolA.ConnectTimeout, poolB.ConnectTimeout);
        Duration("requestTimeout", before.RequestTimeout, after.RequestTimeout);
        Value("retries", before.Retries, after.Retries);
        Duration("streamIdleTimeout", before.StreamIdleTimeout, after.StreamIdleTimeout);
        Duration("tunnelIdleTimeout", before.TunnelIdleTimeout, after.TunnelIdleTimeout);
        Value("limits.maxClientConnections", before.Limits.MaxClientConnections, after.Limits.MaxClientConnections);
        Duration("limits.requestHeadersTimeout", before.Limits.RequestHeadersTimeout, after.Limits.RequestHeadersTimeout);
        var (adA, adB) = (before.Admission, after.Admission);
        Value("limits.maxInFlightPerBackend", adA.MaxInFlightPerBackend, adB.MaxInFlightPerBackend);
        Value("queue.size", adA.QueueSize, adB.QueueSize);
        Duration("queue.timeout", adA.QueueTimeout, adB.QueueTimeout);
        Value("retryBudget.percent", adA.RetryBudgetPercent, adB.RetryBudgetPercent);
        Value("retryBudget.minPerSecond", adA.RetryBudgetMinPerSecond, adB.RetryBudgetMinPerSecond);
        Value("slowStart", Off(adA.SlowStart), Off(adB.SlowStart));
        Value("accessLog.path", before.AccessLog.Path ?? "off", after.AccessLog.Path ?? "off");
        Value("accessLog.format", AccessLogConfig.Name(before.AccessLog.Format), AccessLogConfig.Name(after.AccessLog.Format));
        if (before.AdminToken != after.AdminToken) changes.Add("adminToken changed"); // never its value
        Value("journal.path", before.Journal.Path ?? "off", after.Journal.Path ?? "off");
        Value("journal.maxSizeMB", before.Journal.MaxBytes >> 20, after.Journal.MaxBytes >> 20);
        Value("hashKey", before.HashKey, after.HashKey);
        Value("hashBalanceFactor", before.HashBalanceFactor, after.HashBalanceFactor);
        Value("affinity.cookie", before.Affinity?.Cookie ?? "off", after.Affinity?.Cookie ?? "off");
        if (before.Affinity?.Secret != after.Affinity?.Secret) changes.Add("affinity.secret changed"); // never its value
        Value("affinity.maxAge", Age(before.Affinity?.MaxAge), Age(after.Affinity?.MaxAge));
        Duration("discovery.interval", before.Discovery.Interval, after.Discovery.Interval);
        Value("discovery.nameservers", Servers(before.Discovery), Servers(after.Discovery));

        // A setting added to LbConfig but not to the list above still shows up, if only vaguely.
        var compared = after with
        {
            Listen = before.Listen, Admin = before.Admin, Balancing = before.Balancing, Backends = before.Backends,
            HealthCheck = before.HealthCheck, PassiveHealth = before.PassiveHealth, Pool = before.Pool,
            RequestTimeout = before.RequestTimeout, Retries = before.Retries,
            StreamIdleTimeout = before.StreamIdleTimeout, TunnelIdleTimeout = before.TunnelIdleTimeout, Limits = before.Limits,
            ListenProtocols = before.ListenProtocols, Tls = before.Tls,
            AccessLog = before.AccessLog, Admission = before.Admission,
            HashKey = before.HashKey, HashBalanceFactor = before.HashBalanceFactor, Affinity = before.Affinity,
            Discovery = before.Discovery, AdminToken = before.AdminToken, Journal = before.Journal,
        };
        if (compared != before) changes.Add("other settings");

        return changes.Count == 0 ? NoChange : string.Join(", ", changes);
    }

    static string Off(TimeSpan t) => t == TimeSpan.Zero ? "off" : Durations.Format(t);
    static string Age(TimeSpan? t) => t is { } d ? Durations.Format(d) : "none";
    static string Servers(DiscoveryConfig d) => d.Nameservers.Length == 0 ? "system" : d.Nameservers;
    static string Name(BackendProtocol p) => p.ToString().ToLowerInvariant();

    // Backends are the same backend when their Keys match (normalised URLs), as in Reconcile.
    static void Backends(IReadOnlyList<BackendConfig> before, IReadOnlyList<BackendConfig> after, List<string> changes)
    {
        var old = before.ToDictionary(b => b.Key);
        var now = after.ToDictionary(b => b.Key);
        var added = after.Where(b => !old.ContainsKey(b.Key)).Select(b => b.Url).ToList();
        var removed = before.Where(b => !now.ContainsKey(b.Key)).Select(b => b.Url).ToList();
        if (added.Count > 0) changes.Add("backends added: " + string.Join(", ", added));
        if (removed.Count > 0) changes.Add("backends removed: " + string.Join(", ", removed));
        foreach (var b in after)
            if (old.TryGetValue(b.Key, out var was) && was.Weight != b.Weight)
                changes.Add(string.Create(CultureInfo.InvariantCulture, $"{b.Url} weight {was.Weight} -> {b.Weight}"));
        foreach (var b in after)
        {
            if (!old.TryGetValue(b.Key, out var was)) continue;
            if (was.Protocol != b.Protocol) changes.Add($"{b.Url} protocol {Name(was.Protocol)} -> {Name(b.Protocol)}");
            if (was.Tls != b.Tls) changes.Add($"{b.Url} tls");
            if (was.MaxInFlight != b.MaxInFlight)
                changes.Add(string.Create(CultureInfo.InvariantCulture, $"{b.Url} maxInFlight {was.MaxInFlight?.ToString(CultureInfo.InvariantCulture) ?? "default"} -> {b.MaxInFlight?.ToString(CultureInfo.InvariantCulture) ?? "default"}"));
            if (was.Discover != b.Discover) changes.Add($"{b.Url} discover {(was.Discover ? "dns" : "off")} -> {(b.Discover ? "dns" : "off")}");
        }
        if (added.Count == 0 && removed.Count == 0
            && !before.Select(b => b.Key).SequenceEqual(after.Select(b => b.Key)))
            changes.Add("backends reordered");
    }
}
