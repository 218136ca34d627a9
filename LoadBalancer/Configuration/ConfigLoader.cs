using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LoadBalancer.Configuration;

// Reads lb.json into an LbConfig, or throws ConfigException with the one line a user needs:
// the file, the key as spelled in the docs (healthCheck.interval, backends[1].url) and the problem.
// Keys are case-insensitive; comments and trailing commas are allowed. A key it does not know is
// not an error (an older balancer can read a newer file) but a warning, with the nearest known
// key when it looks like a typo: "healthCheck.intervall: unknown key, ignored (did you mean
// healthCheck.interval?)". Strict (--strict) makes the first unknown key the error instead.
public static class ConfigLoader
{
    public static readonly Uri DefaultListen = new("http://127.0.0.1:8080");
    public static readonly Uri DefaultAdmin = new("http://127.0.0.1:8081");

    static readonly JsonDocumentOptions JsonOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static LbConfig Load(string path, List<string>? warnings = null, bool strict = false)
    {
        byte[] bytes;
        try
        {
            bytes = BoundedFile.Read(path, BoundedFile.ConfigLimit);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException($"{path}: file not found");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{path}: cannot read: {e.Message}");
        }
        return Parse(bytes, path, warnings, strict);
    }

    /// <param name="warnings">Receives one line per unknown key; null to ignore them.</param>
    /// <param name="strict">An unknown key is an error (ConfigException), not a warning.</param>
    /// <summary>listenProtocols as lb.json spells it, for log lines: [http1, h2], or quoted,
    /// ["h2c"]. h2 on https, h2c on http.</summary>
    public static string ListenProtocolsText(LbConfig config, bool quoted = false)
    {
        var names = new List<string>();
        if (config.ListenProtocols.HasFlag(HttpProtocols.Http1)) names.Add("http1");
        if (config.ListenProtocols.HasFlag(HttpProtocols.Http2)) names.Add(config.Listen.Scheme == "https" ? "h2" : "h2c");
        return $"[{string.Join(", ", quoted ? names.Select(n => $"\"{n}\"") : names)}]";
    }

    public static LbConfig Parse(ReadOnlyMemory<byte> json, string path, List<string>? warnings = null, bool strict = false)
    {
        if (json.Length > BoundedFile.ConfigLimit) throw new ConfigException($"{path}: {BoundedFile.Describe(BoundedFile.ConfigLimit)}");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, JsonOptions);
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is { } line ? $"line {line + 1}, column {(e.BytePositionInLine ?? 0) + 1}: " : "";
            throw new ConfigException($"{path}: {where}invalid JSON");
        }
        using (doc)
        {
            return new Reader(path, warnings, strict).Root(doc.RootElement);
        }
    }

    public static string Normalise(Uri uri)
    {
        var path = uri.AbsolutePath.TrimEnd('/');
        // IdnHost drops an IPv6 address's brackets, which a URL needs back.
        var host = uri.HostNameType == UriHostNameType.IPv6 ? $"[{uri.IdnHost}]" : uri.IdnHost;
        return $"{uri.Scheme.ToLowerInvariant()}://{host.ToLowerInvariant()}:{uri.Port}{path}";
    }

    // Every key lb.json may hold, per object, as spelled in the docs.
    static readonly string[] RootKeys = ["listen", "admin", "balancing", "backends", "healthCheck", "passiveHealth", "pool", "requestTimeout", "streamIdleTimeout", "tunnelIdleTimeout", "limits", "retries", "tls", "listenProtocols", "accessLog", "queue", "retryBudget", "slowStart", "hashKey", "hashBalanceFactor", "affinity", "discovery", "adminToken", "journal", "$schema"];
    static readonly string[] HealthKeys = ["path", "interval", "timeout", "healthyThreshold", "unhealthyThreshold"];
    static readonly string[] PassiveKeys = ["consecutiveFailures", "ejectFor", "maxEjectionPercent"];
    static readonly string[] PoolKeys = ["maxConnectionsPerBackend", "idleTimeout", "lifetime", "connectTimeout"];
    static readonly string[] BackendKeys = ["url", "weight", "protocol", "tls", "maxInFlight", "discover"];
    static readonly string[] TlsKeys = ["certificate", "key"];
    static readonly string[] BackendTlsKeys = ["ca", "serverName", "insecureSkipVerify"];
    static readonly string[] LimitsKeys = ["maxClientConnections", "requestHeadersTimeout", "maxInFlightPerBackend"];
    static readonly string[] QueueKeys = ["size", "timeout"];
    static readonly string[] RetryBudgetKeys = ["percent", "minPerSecond"];
    static readonly string[] AccessLogKeys = ["path", "format"];
    static readonly string[] JournalKeys = ["path", "maxSizeMB"];
    static readonly string[] AffinityKeys = ["cookie", "secret", "maxAge"];
    static readonly string[] DiscoveryKeys = ["interval", "nameservers"];

    sealed class Reader(string file, List<string>? warnings, bool strict)
    {
        ConfigException Error(string key, string problem) => new($"{file}: {key}: {problem}");

        public LbConfig Root(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object) throw new ConfigException($"{file}: the top level must be a JSON object");
            WarnUnknown(root, "", RootKeys);

            var health = Get(root, "healthCheck") is { } h ? Section(h, "healthCheck", HealthKeys) : (JsonElement?)null;
            var passive = Get(root, "passiveHealth") is { } p ? Section(p, "passiveHealth", PassiveKeys) : (JsonElement?)null;
            var pool = Get(root, "pool") is { } o ? Section(o, "pool", PoolKeys) : (JsonElement?)null;
            var limits = Get(root, "limits") is { } l ? Section(l, "limits", LimitsKeys) : (JsonElement?)null;

            var balancing = String(root, "balancing", "balancing") ?? BalancingNames.RoundRobin;
            var policy = BalancingNames.All.FirstOrDefault(n => n.Equals(balancing.Trim(), StringComparison.OrdinalIgnoreCase))
                ?? throw Error("balancing", $"unknown balancing policy \"{balancing}\" (use {string.Join(", ", BalancingNames.All)})");

            var path = String(health, "path", "healthCheck.path") ?? "/healthcheck";
            if (!path.StartsWith('/')) throw Error("healthCheck.path", $"\"{path}\" must start with /");

            var listen = Listener(root, "listen", DefaultListen);
            var admin = Listener(root, "admin", DefaultAdmin);
            var protocols = ListenProtocols(root, listen);
            var tls = ListenTls(root, listen);
            if (listen.Port != 0 && listen.Port == admin.Port && (listen.Host == admin.Host || IsAny(listen) || IsAny(admin)))
                throw Error("admin", $"\"{admin}\" is the same address as listen: the admin listener needs its own port");

            return new LbConfig(
                Listen: listen,
                Admin: admin,
                Balancing: policy,
                Backends: Backends(root),
                HealthCheck: new HealthCheckConfig(
                    path,
                    Duration(health, "interval", "healthCheck.interval", TimeSpan.FromSeconds(10)),
                    Duration(health, "timeout", "healthCheck.timeout", TimeSpan.FromSeconds(2)),
                    Int(health, "healthyThreshold", "healthCheck.healthyThreshold", 2, 1, 1000),
                    Int(health, "unhealthyThreshold", "healthCheck.unhealthyThreshold", 2, 1, 1000)),
                PassiveHealth: new PassiveHealthConfig(
                    Int(passive, "consecutiveFailures", "passiveHealth.consecutiveFailures", 3, 1, 1_000_000),
                    Duration(passive, "ejectFor", "passiveHealth.ejectFor", TimeSpan.FromSeconds(30)))
                {
                    MaxEjectionPercent = Int(passive, "maxEjectionPercent", "passiveHealth.maxEjectionPercent", 50, 0, 100),
                },
                Pool: new PoolConfig(
                    Int(pool, "maxConnectionsPerBackend", "pool.maxConnectionsPerBackend", 1024, 1, 1_000_000),
                    Duration(pool, "idleTimeout", "pool.idleTimeout", TimeSpan.FromSeconds(60)),
                    Duration(pool, "lifetime", "pool.lifetime", TimeSpan.FromMinutes(5)),
                    Duration(pool, "connectTimeout", "pool.connectTimeout", TimeSpan.FromSeconds(2))),
                RequestTimeout: Duration(root, "requestTimeout", "requestTimeout", TimeSpan.FromSeconds(30)),
                Retries: Int(root, "retries", "retries", 2, 0, 100),
                StreamIdleTimeout: Duration(root, "streamIdleTimeout", "streamIdleTimeout", TimeSpan.FromSeconds(60)),
                TunnelIdleTimeout: Duration(root, "tunnelIdleTimeout", "tunnelIdleTimeout", TimeSpan.FromHours(1)),
                Limits: new LimitsConfig(
                    Int(limits, "maxClientConnections", "limits.maxClientConnections", LimitsConfig.Default.MaxClientConnections, 1, 1_000_000),
                    Duration(limits, "requestHeadersTimeout", "limits.requestHeadersTimeout", LimitsConfig.Default.RequestHeadersTimeout)))
            {
                AccessLog = AccessLog(root),
                Admission = Admission(root, limits),
                AdminToken = AdminToken(root),
                Journal = Journal(root),
                Tls = tls,
                ListenProtocols = protocols,
                HashKey = HashKey(root),
                HashBalanceFactor = BalanceFactor(root),
                Affinity = Affinity(root),
                Discovery = Discovery(root),
            };
        }

        // limits.maxInFlightPerBackend, queue.*, retryBudget.*, slowStart (issue 12).
        AdmissionConfig Admission(JsonElement root, JsonElement? limits)
        {
            var queue = Get(root, "queue") is { } q ? Section(q, "queue", QueueKeys) : (JsonElement?)null;
            var budget = Get(root, "retryBudget") is { } r ? Section(r, "retryBudget", RetryBudgetKeys) : (JsonElement?)null;
            var d = AdmissionConfig.Default;
            return new AdmissionConfig(
                Int(limits, "maxInFlightPerBackend", "limits.maxInFlightPerBackend", d.MaxInFlightPerBackend, 0, 1_000_000),
                Int(queue, "size", "queue.size", d.QueueSize, 0, 1_000_000),
                Duration(queue, "timeout", "queue.timeout", d.QueueTimeout),
                Int(budget, "percent", "retryBudget.percent", d.RetryBudgetPercent, 0, 100),
                Int(budget, "minPerSecond", "retryBudget.minPerSecond", d.RetryBudgetMinPerSecond, 0, 1_000_000),
                Duration(root, "slowStart", "slowStart", d.SlowStart, zeroAllowed: true));
        }

        // hashKey: header:NAME, cookie:NAME, client-ip or path.
        HashKeyConfig HashKey(JsonElement root)
        {
            var text = String(root, "hashKey", "hashKey")?.Trim();
            if (text is null) return HashKeyConfig.Default;
            const string use = "use header:NAME, cookie:NAME, client-ip or path";
            var colon = text.IndexOf(':');
            var (kind, name) = colon < 0 ? (text, null) : (text[..colon], text[(colon + 1)..].Trim());
            var source = kind.ToLowerInvariant() switch
            {
                "client-ip" when name is null => HashKeySource.ClientIp,
                "path" when name is null => HashKeySource.Path,
                "header" when name is not null => HashKeySource.Header,
                "cookie" when name is not null => HashKeySource.Cookie,
                _ => throw Error("hashKey", $"\"{text}\" is not a hash key: {use}"),
            };
            if (name is not null && !IsToken(name)) throw Error("hashKey", $"\"{name}\" is not a header or cookie name");
            return new HashKeyConfig(source, name);
        }

        // hashBalanceFactor: 0 (off) or from 1 (every backend at the mean) to 100.
        double BalanceFactor(JsonElement root)
        {
            if (Get(root, "hashBalanceFactor") is not { } e) return 1.25;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out var f) || !(f == 0 || f >= 1 && f <= 100))
                throw Error("hashBalanceFactor", $"{e.GetRawText()} must be 0 (off) or a number from 1 to 100");
            return f;
        }

        AffinityConfig? Affinity(JsonElement root)
        {
            if (Get(root, "affinity") is not { } a) return null;
            var section = Section(a, "affinity", AffinityKeys);
            var cookie = String(section, "cookie", "affinity.cookie")?.Trim();
            if (cookie is null)
            {
                warnings?.Add($"{file}: affinity.cookie: not set, so affinity is off");
                return null;
            }
            if (!IsToken(cookie)) throw Error("affinity.cookie", $"\"{cookie}\" is not a cookie name");
            var secret = String(section, "secret", "affinity.secret");
            if (secret is { Length: 0 }) throw Error("affinity.secret", "is empty");
            if (secret is null)
                warnings?.Add($"{file}: affinity.secret: not set, so each balancer makes its own and instances do not share cookies");
            TimeSpan? maxAge = Get(section, "maxAge") is null ? null : Duration(section, "maxAge", "affinity.maxAge", TimeSpan.Zero);
            return new AffinityConfig(cookie, secret, maxAge);
        }

        DiscoveryConfig Discovery(JsonElement root)
        {
            if (Get(root, "discovery") is not { } d) return DiscoveryConfig.Default;
            var section = Section(d, "discovery", DiscoveryKeys);
            var interval = Duration(section, "interval", "discovery.interval", DiscoveryConfig.Default.Interval);
            var servers = new List<string>();
            if (Get(section, "nameservers") is { } list)
            {
                if (list.ValueKind != JsonValueKind.Array) throw Error("discovery.nameservers", "must be a list of \"ip:port\"");
                foreach (var item in list.EnumerateArray())
                {
                    var text = item.ValueKind == JsonValueKind.String ? item.GetString()!.Trim() : item.GetRawText();
                    if (item.ValueKind != JsonValueKind.String || !System.Net.IPEndPoint.TryParse(text, out var endPoint))
                        throw Error("discovery.nameservers", $"{text} is not an address: use \"ip\" or \"ip:port\" (e.g. \"127.0.0.1:5353\")");
                    if (endPoint.Port == 0) endPoint.Port = 53;
                    servers.Add(endPoint.ToString());
                }
            }
            return new DiscoveryConfig(interval, string.Join(",", servers));
        }

        // An RFC 9110 token: what a header or cookie name may be.
        static bool IsToken(string s) =>
            s.Length > 0 && s.All(c => c is > ' ' and < (char)127 && "()<>@,;:\\\"/[]?={}".IndexOf(c) < 0);

        // Relative file names in lb.json are relative to its own folder, as nginx's are to its prefix.
        string Resolve(string name) =>
            Path.GetFullPath(name, Path.GetDirectoryName(Path.GetFullPath(file)) ?? Directory.GetCurrentDirectory());

        // tls.certificate and tls.key: required for an https listen. Only the names are checked
        // here; the pair itself is loaded (and a broken one refused) by ServerCertificate.
        TlsConfig? ListenTls(JsonElement root, Uri listen)
        {
            var section = Get(root, "tls") is { } t ? Section(t, "tls", TlsKeys) : (JsonElement?)null;
            if (listen.Scheme != "https")
            {
                if (section is not null) warnings?.Add($"{file}: tls: ignored: listen is {listen.Scheme}://, not https://");
                return null;
            }
            var certificate = String(section, "certificate", "tls.certificate") ?? throw Error("tls.certificate", "is required when listen is https:// (a PEM file)");
            var key = String(section, "key", "tls.key") ?? throw Error("tls.key", "is required when listen is https:// (a PEM file)");
            return new TlsConfig(Resolve(certificate), Resolve(key));
        }

        // listenProtocols: https offers h2 and http/1.1 by ALPN; plain http speaks either HTTP/1.1
        // or prior-knowledge HTTP/2 (h2c), not both (Kestrel cannot tell them apart without TLS).
        HttpProtocols ListenProtocols(JsonElement root, Uri listen)
        {
            var https = listen.Scheme == "https";
            if (Get(root, "listenProtocols") is not { } list) return https ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
            var allowed = https ? "[\"http1\"], [\"h2\"] or [\"http1\", \"h2\"] on https://" : "[\"http1\"] or [\"h2c\"] on http://";
            if (list.ValueKind != JsonValueKind.Array) throw Error("listenProtocols", $"must be a list: {allowed}");
            var protocols = HttpProtocols.None;
            foreach (var item in list.EnumerateArray())
            {
                var name = item.ValueKind == JsonValueKind.String ? item.GetString()!.Trim().ToLowerInvariant() : item.GetRawText();
                protocols |= (name, https) switch
                {
                    ("http1", _) => HttpProtocols.Http1,
                    ("h2", true) or ("h2c", false) => HttpProtocols.Http2,
                    _ => throw Error("listenProtocols", $"\"{name}\" is not allowed here: use {allowed}"),
                };
            }
            if (protocols == HttpProtocols.None || !https && protocols == HttpProtocols.Http1AndHttp2)
                throw Error("listenProtocols", $"use {allowed}");
            return protocols;
        }

        BackendProtocol Protocol(JsonElement item, string key, Uri uri)
        {
            var text = String(item, "protocol", key + ".protocol");
            if (text is null) return BackendProtocol.Http1;
            var protocol = text.Trim().ToLowerInvariant() switch
            {
                "http1" => BackendProtocol.Http1,
                "h2c" => BackendProtocol.H2c,
                "h2" => BackendProtocol.H2,
                _ => throw Error(key + ".protocol", $"unknown protocol \"{text}\" (use http1, h2c or h2)"),
            };
            if (protocol == BackendProtocol.H2c && uri.Scheme != "http")
                throw Error(key + ".protocol", "h2c (HTTP/2 without TLS) needs an http:// url; use h2 for https://");
            if (protocol == BackendProtocol.H2 && uri.Scheme != "https")
                throw Error(key + ".protocol", "h2 (HTTP/2 over TLS) needs an https:// url; use h2c for http://");
            return protocol;
        }

        BackendTlsConfig? BackendTls(JsonElement item, string key, Uri uri)
        {
            if (Get(item, "tls") is not { } t) return null;
            var section = Section(t, key + ".tls", BackendTlsKeys);
            if (uri.Scheme != "https") throw Error(key + ".tls", "is only for an https:// url");
            var serverName = String(section, "serverName", key + ".tls.serverName")?.Trim();
            if (serverName is { Length: 0 } || serverName is not null && Uri.CheckHostName(serverName) == UriHostNameType.Unknown)
                throw Error(key + ".tls.serverName", $"\"{serverName}\" is not a host name");
            var insecure = Bool(section, "insecureSkipVerify", key + ".tls.insecureSkipVerify");
            string? ca = null;
            if (String(section, "ca", key + ".tls.ca") is { } caFile)
            {
                if (insecure) throw Error(key + ".tls.ca", "and insecureSkipVerify together: a CA to verify against, or no verification, not both");
                ca = ReadCa(Resolve(caFile), key + ".tls.ca");
            }
            return new BackendTlsConfig(ca, serverName, insecure);
        }

        string ReadCa(string path, string key)
        {
            string text;
            try
            {
                var bytes = BoundedFile.Read(path, BoundedFile.PemLimit);
                if (BoundedFile.TooLarge(bytes, BoundedFile.PemLimit)) throw Error(key, $"{path}: {BoundedFile.Describe(BoundedFile.PemLimit)}");
                text = System.Text.Encoding.UTF8.GetString(bytes);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                throw Error(key, $"{path}: file not found");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Error(key, $"{path}: cannot read: {e.Message}");
            }
            var certificates = new X509Certificate2Collection();
            try
            {
                certificates.ImportFromPem(text);
            }
            catch (System.Security.Cryptography.CryptographicException e)
            {
                throw Error(key, $"{path}: not a PEM certificate: {e.Message}");
            }
            if (certificates.Count == 0) throw Error(key, $"{path}: no PEM certificate in it");
            foreach (var c in certificates) c.Dispose();
            return text;
        }

        // adminToken: any non-empty printable ASCII without spaces (it travels in a header).
        string? AdminToken(JsonElement root)
        {
            if (String(root, "adminToken", "adminToken") is not { } token) return null;
            if (token.Length == 0) throw Error("adminToken", "is empty: remove the key or set a token");
            if (token.Any(c => c is <= ' ' or > '~')) throw Error("adminToken", "must be printable ASCII without spaces");
            return token;
        }

        // journal.path: a file, relative to lb.json's folder, whose folder exists; journal.maxSizeMB: its rotation size.
        JournalConfig Journal(JsonElement root)
        {
            if (Get(root, "journal") is not { } section) return JournalConfig.Off;
            Section(section, "journal", JournalKeys);
            var max = Int(section, "maxSizeMB", "journal.maxSizeMB", (int)(JournalConfig.DefaultMaxBytes >> 20), 1, 1_000_000) * 1024L * 1024;
            var text = String(section, "path", "journal.path");
            if (text is null) return JournalConfig.Off with { MaxBytes = max };
            if (text.Length == 0) throw Error("journal.path", "is empty: remove the key or name a file");
            return new JournalConfig(FilePath(text, "journal.path"), max);
        }

        // accessLog.path: "-" is stdout; a file path is relative to lb.json's folder, which must
        // exist (the file itself is created). Without a path the log is off, whatever the format.
        AccessLogConfig AccessLog(JsonElement root)
        {
            if (Get(root, "accessLog") is not { } section) return AccessLogConfig.Off;
            Section(section, "accessLog", AccessLogKeys);
            var formatText = String(section, "format", "accessLog.format") ?? "json";
            var format = formatText.Trim().ToLowerInvariant() switch
            {
                "json" => AccessLogFormat.Json,
                "combined" => AccessLogFormat.Combined,
                _ => throw Error("accessLog.format", $"unknown format \"{formatText}\" (use json or combined)"),
            };
            var text = String(section, "path", "accessLog.path");
            if (text is null)
            {
                warnings?.Add($"{file}: accessLog.path: not set, so the access log is off");
                return AccessLogConfig.Off with { Format = format };
            }
            text = text.Trim();
            if (text.Length == 0) throw Error("accessLog.path", "is empty: use \"-\" for stdout or a file path");
            if (text == AccessLogConfig.StdoutPath) return new AccessLogConfig(text, format);
            return new AccessLogConfig(FilePath(text, "accessLog.path"), format);
        }

        // A file to write, relative to lb.json's folder: the folder must exist, the file need not.
        string FilePath(string text, string key)
        {
            string full;
            try
            {
                full = Resolve(text);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
            {
                throw Error(key, $"\"{text}\" is not a file path");
            }
            if (Directory.Exists(full)) throw Error(key, $"\"{text}\" is a folder, not a file");
            var folder = Path.GetDirectoryName(full);
            if (folder is null || !Directory.Exists(folder)) throw Error(key, $"\"{text}\": the folder {folder} does not exist");
            return full;
        }

        List<BackendConfig> Backends(JsonElement root)
        {
            if (Get(root, "backends") is not { } list) throw Error("backends", "is required: a list of { \"url\": \"http://host:port\" }");
            if (list.ValueKind != JsonValueKind.Array) throw Error("backends", "must be a list");
            var result = new List<BackendConfig>();
            var i = 0;
            foreach (var item in list.EnumerateArray())
            {
                var key = $"backends[{i}]";
                Section(item, key, BackendKeys);
                var url = String(item, "url", key + ".url") ?? throw Error(key + ".url", "is required");
                if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Host.Length == 0)
                    throw Error(key + ".url", $"\"{url}\" is not an absolute http:// or https:// URL");
                if (uri.Query.Length > 0 || uri.Fragment.Length > 0)
                    throw Error(key + ".url", $"\"{url}\" must not have a query or fragment");
                var normalised = Normalise(uri);
                var duplicate = result.FindIndex(b => b.Key == normalised);
                if (duplicate >= 0) throw Error(key + ".url", $"\"{url}\" duplicates backends[{duplicate}].url");
                var weight = Int(item, "weight", key + ".weight", 1, 1, 1000);
                result.Add(new BackendConfig(url.Trim(), normalised, new Uri(normalised + "/"), weight)
                {
                    Protocol = Protocol(item, key, uri),
                    Tls = BackendTls(item, key, uri),
                    MaxInFlight = Get(item, "maxInFlight") is null ? null : Int(item, "maxInFlight", key + ".maxInFlight", 0, 0, 1_000_000),
                    Discover = Discover(item, key, uri),
                });
                i++;
            }
            if (result.Count == 0) throw Error("backends", "needs at least one backend");
            return result;
        }

        // backends[].discover: "dns" needs a host name to resolve, not an address.
        bool Discover(JsonElement item, string key, Uri uri)
        {
            var text = String(item, "discover", key + ".discover");
            if (text is null) return false;
            if (!text.Trim().Equals("dns", StringComparison.OrdinalIgnoreCase))
                throw Error(key + ".discover", $"unknown discovery \"{text}\" (use dns)");
            if (uri.HostNameType != UriHostNameType.Dns)
                throw Error(key + ".discover", $"\"{uri.Host}\" is an IP address: discover needs a host name to resolve");
            return true;
        }

        Uri Listener(JsonElement root, string name, Uri fallback)
        {
            var text = String(root, name, name);
            if (text is null) return fallback;
            // Kestrel's wildcards, so that "http://*:8080" and "http://+:8080" mean every interface.
            var candidate = text.Trim().Replace("://*:", "://0.0.0.0:").Replace("://+:", "://0.0.0.0:");
            // Only the client listener terminates TLS; the admin listener is loopback http.
            if (!Uri.TryCreate(candidate, UriKind.Absolute, out var uri) || !(uri.Scheme == "http" || uri.Scheme == "https" && name == "listen") || uri.AbsolutePath != "/")
                throw Error(name, name == "listen"
                    ? $"\"{text}\" must look like http://127.0.0.1:8080 or https://127.0.0.1:8443"
                    : $"\"{text}\" must look like http://127.0.0.1:8081");
            if (!uri.IsLoopback && !System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out _))
                throw Error(name, $"\"{text}\": the host must be an IP address or localhost");
            return uri;
        }

        static bool IsAny(Uri u) => u.Host is "0.0.0.0" or "[::]";

        static JsonElement? Get(JsonElement? obj, string name)
        {
            if (obj is not { ValueKind: JsonValueKind.Object } o) return null;
            foreach (var p in o.EnumerateObject())
                if (p.Name.Equals(name, StringComparison.OrdinalIgnoreCase) && p.Value.ValueKind != JsonValueKind.Null)
                    return p.Value;
            return null;
        }

        JsonElement Object(JsonElement e, string key) =>
            e.ValueKind == JsonValueKind.Object ? e : throw Error(key, "must be a JSON object");

        JsonElement Section(JsonElement e, string key, string[] known)
        {
            Object(e, key);
            WarnUnknown(e, key + ".", known);
            return e;
        }

        void WarnUnknown(JsonElement obj, string prefix, string[] known)
        {
            if (warnings is null && !strict) return;
            foreach (var p in obj.EnumerateObject())
            {
                if (known.Any(k => k.Equals(p.Name, StringComparison.OrdinalIgnoreCase))) continue;
                var (nearest, edits) = known.Select(k => (k, Distance(k.ToLowerInvariant(), p.Name.ToLowerInvariant()))).MinBy(x => x.Item2);
                var hint = edits <= 2 ? $" (did you mean {prefix}{nearest}?)" : "";
                // Strict: the warning's line, less its "ignored" (it is not).
                if (strict) throw Error(prefix + p.Name, "unknown key" + hint);
                warnings!.Add($"{file}: {prefix}{p.Name}: unknown key, ignored{hint}");
            }
        }

        // Levenshtein distance: how many one-letter edits turn a into b.
        static int Distance(string a, string b)
        {
            var row = new int[b.Length + 1];
            for (var j = 0; j <= b.Length; j++) row[j] = j;
            for (var i = 1; i <= a.Length; i++)
            {
                var diagonal = row[0];
                row[0] = i;
                for (var j = 1; j <= b.Length; j++)
                {
                    var above = row[j];
                    row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                    diagonal = above;
                }
            }
            return row[b.Length];
        }

        string? String(JsonElement? obj, string name, string key)
        {
            if (Get(obj, name) is not { } e) return null;
            if (e.ValueKind != JsonValueKind.String) throw Error(key, "must be a string");
            return e.GetString()!;
        }

        bool Bool(JsonElement? obj, string name, string key)
        {
            if (Get(obj, name) is not { } e) return false;
            if (e.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Error(key, "must be true or false");
            return e.GetBoolean();
        }

        int Int(JsonElement? obj, string name, string key, int fallback, int min, int max)
        {
            if (Get(obj, name) is not { } e) return fallback;
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var n))
                throw Error(key, $"must be a whole number from {min} to {max}");
            if (n < min || n > max) throw Error(key, $"{n} is out of range: must be from {min} to {max}");
            return n;
        }

        TimeSpan Duration(JsonElement? obj, string name, string key, TimeSpan fallback, bool zeroAllowed = false)
        {
            if (Get(obj, name) is not { } e) return fallback;
            var text = e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
            if (e.ValueKind != JsonValueKind.String || !Durations.TryParse(text, out var d))
                throw Error(key, $"{text} is not a duration: use 250ms, 10s, 2m, 1h or 00:00:10");
            if (d < TimeSpan.Zero || d == TimeSpan.Zero && !zeroAllowed) throw Error(key, $"{text} must be more than zero");
            if (d > TimeSpan.FromDays(24)) throw Error(key, $"{text} is too long: at most 24 days");
            return d;
        }
    }
}
