using System.Text;
using LoadBalancer.Configuration;

namespace LoadBalancer.Tests.Configuration;

// Every rule of the contract's lb.json: the value it gives, or the one-line error naming the file
// and the key as the contract spells it (or line and column for JSON that does not parse).
public sealed class ConfigLoaderTests : IDisposable
{
    const string File = "/etc/lb/lb.json";
    const string OneBackend = """ "backends": [ { "url": "http://127.0.0.1:8000" } ] """;

    readonly string _dir = Directory.CreateTempSubdirectory("lb-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static LbConfig Parse(string json) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), File);

    static string Error(string json) => Assert.Throws<ConfigException>(() => Parse(json)).Message;

    /// <summary>The error for a file that is valid but for one extra top-level member.</summary>
    static string ErrorWith(string member) => Error($$"""{ {{OneBackend}}, {{member}} }""");

    // ---- values ------------------------------------------------------------------------------

    [Fact]
    public void Parse_OnlyBackends_EveryOtherKeyHasItsDefault()
    {
        var config = Parse($$"""{ {{OneBackend}} }""");

        Assert.Equal(new Uri("http://127.0.0.1:8080"), config.Listen);
        Assert.Equal(new Uri("http://127.0.0.1:8081"), config.Admin);
        Assert.Equal("round-robin", config.Balancing);
        var backend = Assert.Single(config.Backends);
        Assert.Equal(("http://127.0.0.1:8000", 1), (backend.Url, backend.Weight));
        Assert.Equal(new HealthCheckConfig("/healthcheck", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2), 2, 2), config.HealthCheck);
        Assert.Equal(new PassiveHealthConfig(3, TimeSpan.FromSeconds(30)), config.PassiveHealth);
        Assert.Equal(new PoolConfig(1024, TimeSpan.FromSeconds(60), TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(2)), config.Pool);
        Assert.Equal(TimeSpan.FromSeconds(30), config.RequestTimeout);
        Assert.Equal(2, config.Retries);
    }

    [Fact]
    public void Parse_ContractExample_EveryValueRead()
    {
        var config = Parse("""
            {
              "listen": "http://127.0.0.1:9080",
              "admin": "http://127.0.0.1:9081",
              "balancing": "least-connections",
              "backends": [
                { "url": "http://127.0.0.1:8000" },
                { "url": "http://127.0.0.1:8001", "weight": 2 }
              ],
              "healthCheck": { "path": "/ready", "interval": "5s", "timeout": "250ms", "healthyThreshold": 3, "unhealthyThreshold": 4 },
              "passiveHealth": { "consecutiveFailures": 5, "ejectFor": "1m" },
              "pool": { "maxConnectionsPerBackend": 64, "idleTimeout": "90s", "lifetime": "1h", "connectTimeout": "00:00:03" },
              "requestTimeout": "45s",
              "retries": 0
            }
            """);

        Assert.Equal(new Uri("http://127.0.0.1:9080"), config.Listen);
        Assert.Equal(new Uri("http://127.0.0.1:9081"), config.Admin);
        Assert.Equal("least-connections", config.Balancing);
        Assert.Equal([("http://127.0.0.1:8000", 1), ("http://127.0.0.1:8001", 2)], config.Backends.Select(b => (b.Url, b.Weight)));
        Assert.Equal(new HealthCheckConfig("/ready", TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(250), 3, 4), config.HealthCheck);
        Assert.Equal(new PassiveHealthConfig(5, TimeSpan.FromMinutes(1)), config.PassiveHealth);
        Assert.Equal(new PoolConfig(64, TimeSpan.FromSeconds(90), TimeSpan.FromHours(1), TimeSpan.FromSeconds(3)), config.Pool);
        Assert.Equal(TimeSpan.FromSeconds(45), config.RequestTimeout);
        Assert.Equal(0, config.Retries);
    }

    [Fact]
    public void Parse_KeysInAnyCase_Read()
    {
        var config = Parse("""
            {
              "BALANCING": "Power-Of-Two",
              "Backends": [ { "URL": "http://127.0.0.1:8000", "Weight": 3 } ],
              "healthcheck": { "INTERVAL": "2m", "UnhealthyThreshold": 5 },
              "PassiveHEALTH": { "ejectfor": "1h" },
              "RequestTimeout": "10s", "RETRIES": 4
            }
            """);

        Assert.Equal("power-of-two", config.Balancing);
        Assert.Equal(3, config.Backends[0].Weight);
        Assert.Equal(TimeSpan.FromMinutes(2), config.HealthCheck.Interval);
        Assert.Equal(5, config.HealthCheck.UnhealthyThreshold);
        Assert.Equal(TimeSpan.FromHours(1), config.PassiveHealth.EjectFor);
        Assert.Equal(TimeSpan.FromSeconds(10), config.RequestTimeout);
        Assert.Equal(4, config.Retries);
    }

    [Fact]
    public void Parse_KeyInOtherCaseWrong_ErrorSpellsTheKeyAsDocumented()
    {
        var message = Error($$"""{ {{OneBackend}}, "HEALTHCHECK": { "Interval": "soon" } }""");

        Assert.StartsWith($"{File}: healthCheck.interval: ", message);
    }

    [Theory]
    [InlineData("round-robin")]
    [InlineData("least-connections")]
    [InlineData("power-of-two")]
    [InlineData("random")]
    public void Parse_EveryPolicy_Accepted(string policy)
    {
        Assert.Equal(policy, Parse($$"""{ {{OneBackend}}, "balancing": "{{policy}}" }""").Balancing);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1000)]
    public void Parse_WeightAtTheLimits_Accepted(int weight)
    {
        var config = Parse($$"""{ "backends": [ { "url": "http://h:1", "weight": {{weight}} } ] }""");

        Assert.Equal(weight, config.Backends[0].Weight);
    }

    [Fact]
    public void Parse_BackendUrl_KeptAsWrittenAndNormalisedForComparison()
    {
        var config = Parse("""{ "backends": [ { "url": "HTTP://Example.COM/api/" }, { "url": "https://h" } ] }""");

        Assert.Equal("HTTP://Example.COM/api/", config.Backends[0].Url); // the label users see
        Assert.Equal("http://example.com:80/api", config.Backends[0].Key);
        Assert.Equal("https://h:443", config.Backends[1].Key);
    }

    [Fact]
    public void Parse_Ipv6Backend_Accepted()
    {
        var config = Parse("""{ "backends": [ { "url": "http://[::1]:8000" }, { "url": "http://[::1]:8001/" } ] }""");

        Assert.Equal("http://[::1]:8000", config.Backends[0].Key);
        Assert.Equal(new Uri("http://[::1]:8000/"), config.Backends[0].Uri);
        Assert.Equal(2, config.Backends.Count);
    }

    [Fact]
    public void Parse_Ipv6DuplicateAfterNormalising_SecondIsNamed()
    {
        var message = Error("""{ "backends": [ { "url": "http://[::1]:80/" }, { "url": "http://[0:0::1]" } ] }""");

        Assert.StartsWith($"{File}: backends[1].url: ", message);
    }

    [Fact]
    public void Parse_CommentsAndTrailingCommas_Accepted()
    {
        var config = Parse("""
            {
              // the only backend
              "backends": [ { "url": "http://h:1", }, ],
            }
            """);

        Assert.Single(config.Backends);
    }

    [Fact]
    public void Parse_NullValue_MeansTheDefault()
    {
        Assert.Equal(2, Parse($$"""{ {{OneBackend}}, "retries": null }""").Retries);
    }

    // ---- errors: the file and the key -------------------------------------------------------

    [Fact]
    public void Load_MissingFile_NamesTheFile()
    {
        var path = Path.Combine(_dir, "nope.json");

        var message = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path)).Message;

        Assert.Equal($"{path}: file not found", message);
    }

    [Fact]
    public void Load_MissingDirectory_NamesTheFile()
    {
        var path = Path.Combine(_dir, "no-such-dir", "lb.json");

        Assert.StartsWith($"{path}: ", Assert.Throws<ConfigException>(() => ConfigLoader.Load(path)).Message);
    }

    [Fact]
    public void Load_FileOnDisk_ErrorNamesThatFile()
    {
        var path = Path.Combine(_dir, "lb.json");
        System.IO.File.WriteAllText(path, """{ "backends": [ { "url": "ftp://h" } ] }""");

        var message = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path)).Message;

        Assert.StartsWith($"{path}: backends[0].url: ", message);
    }

    [Fact]
    public void Load_ValidFile_Read()
    {
        var path = Path.Combine(_dir, "lb.json");
        System.IO.File.WriteAllText(path, $$"""{ {{OneBackend}} }""");

        Assert.Single(ConfigLoader.Load(path).Backends);
    }

    [Fact]
    public void Parse_BadJson_LineAndColumnOfTheMistake()
    {
        var message = Error("{\n  \"backends\": [\n    { \"url\": \"http://h:1\" ]\n}");

        // Line 3: `    { "url": "http://h:1" ]` - the ] at column 27 closes what was never opened.
        Assert.Equal($"{File}: line 3, column 27: invalid JSON", message);
    }

    [Fact]
    public void Parse_BadJsonOnTheFirstLine_LineOne()
    {
        // "n" could still start null: the parser stops at the "o" in column 16.
        Assert.Equal($"{File}: line 1, column 16: invalid JSON", Error("""{ "backends": nope }"""));
    }

    [Fact]
    public void Parse_TopLevelNotAnObject_NamesTheFile()
    {
        Assert.StartsWith($"{File}: ", Error("[]"));
    }

    [Theory]
    [InlineData("{ }", "backends")]
    [InlineData("""{ "backends": [] }""", "backends")]
    [InlineData("""{ "backends": "http://h" }""", "backends")]
    [InlineData("""{ "backends": [ "http://h" ] }""", "backends[0]")]
    [InlineData("""{ "backends": [ { "weight": 1 } ] }""", "backends[0].url")]
    [InlineData("""{ "backends": [ { "url": 8000 } ] }""", "backends[0].url")]
    [InlineData("""{ "backends": [ { "url": "http://a:1" }, { "url": "/relative" } ] }""", "backends[1].url")]
    [InlineData("""{ "backends": [ { "url": "http://a:1" }, { "url": "ftp://h" } ] }""", "backends[1].url")]
    [InlineData("""{ "backends": [ { "url": "http://a:1" }, { "url": "127.0.0.1:8000" } ] }""", "backends[1].url")]
    [InlineData("""{ "backends": [ { "url": "http://h:1/?q=1" } ] }""", "backends[0].url")]
    public void Parse_BadBackends_NamesTheKey(string json, string key)
    {
        Assert.StartsWith($"{File}: {key}: ", Error(json));
    }

    [Theory]
    [InlineData("http://h:80/", "http://h")]
    [InlineData("http://h", "http://h:80")]
    [InlineData("HTTP://H/", "http://h")]
    [InlineData("https://h:443", "https://h/")]
    [InlineData("http://h:1/api/", "http://H:1/api")]
    public void Parse_DuplicateUrlsAfterNormalising_SecondIsNamed(string first, string second)
    {
        var message = Error($$"""{ "backends": [ { "url": "http://other:9" }, { "url": "{{first}}" }, { "url": "{{second}}" } ] }""");

        Assert.StartsWith($"{File}: backends[2].url: ", message);
        Assert.Contains("backends[1]", message); // and which one it duplicates
    }

    [Theory]
    [InlineData("http://h:80", "http://h:81")]
    [InlineData("http://h", "https://h")]
    [InlineData("http://h/a", "http://h/b")]
    public void Parse_DifferentUrls_NotDuplicates(string first, string second)
    {
        Assert.Equal(2, Parse($$"""{ "backends": [ { "url": "{{first}}" }, { "url": "{{second}}" } ] }""").Backends.Count);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1001")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("\"2\"")]
    public void Parse_WeightOutOfRange_NamesTheKey(string weight)
    {
        var message = Error($$"""{ "backends": [ { "url": "http://a:1" }, { "url": "http://b:1", "weight": {{weight}} } ] }""");

        Assert.StartsWith($"{File}: backends[1].weight: ", message);
    }

    [Theory]
    [InlineData(""" "balancing": "fastest" """, "balancing")]
    [InlineData(""" "balancing": 1 """, "balancing")]
    [InlineData(""" "healthCheck": "10s" """, "healthCheck")]
    [InlineData(""" "healthCheck": { "path": "healthcheck" } """, "healthCheck.path")]
    [InlineData(""" "healthCheck": { "interval": "soon" } """, "healthCheck.interval")]
    [InlineData(""" "healthCheck": { "interval": 10 } """, "healthCheck.interval")]
    [InlineData(""" "healthCheck": { "interval": "0s" } """, "healthCheck.interval")]
    [InlineData(""" "healthCheck": { "interval": "-5s" } """, "healthCheck.interval")]
    [InlineData(""" "healthCheck": { "timeout": "2 seconds" } """, "healthCheck.timeout")]
    [InlineData(""" "healthCheck": { "healthyThreshold": 0 } """, "healthCheck.healthyThreshold")]
    [InlineData(""" "healthCheck": { "unhealthyThreshold": 0 } """, "healthCheck.unhealthyThreshold")]
    [InlineData(""" "healthCheck": { "unhealthyThreshold": -2 } """, "healthCheck.unhealthyThreshold")]
    [InlineData(""" "passiveHealth": { "consecutiveFailures": 0 } """, "passiveHealth.consecutiveFailures")]
    [InlineData(""" "passiveHealth": { "ejectFor": "30" } """, "passiveHealth.ejectFor")]
    [InlineData(""" "pool": { "maxConnectionsPerBackend": 0 } """, "pool.maxConnectionsPerBackend")]
    [InlineData(""" "pool": { "idleTimeout": "1d" } """, "pool.idleTimeout")]
    [InlineData(""" "pool": { "lifetime": "" } """, "pool.lifetime")]
    [InlineData(""" "pool": { "connectTimeout": "fast" } """, "pool.connectTimeout")]
    [InlineData(""" "requestTimeout": "30x" """, "requestTimeout")]
    [InlineData(""" "retries": -1 """, "retries")]
    [InlineData(""" "retries": "2" """, "retries")]
    [InlineData(""" "listen": "8080" """, "listen")]
    [InlineData(""" "listen": "https://127.0.0.1:8443" """, "tls.certificate")]
    [InlineData(""" "listen": "https://127.0.0.1:8443", "tls": { "certificate": "a.pem" } """, "tls.key")]
    [InlineData(""" "admin": "https://127.0.0.1:8443" """, "admin")]
    [InlineData(""" "listenProtocols": ["h2"] """, "listenProtocols")]
    [InlineData(""" "listenProtocols": ["http1", "h2c"] """, "listenProtocols")]
    [InlineData(""" "listenProtocols": [] """, "listenProtocols")]
    [InlineData(""" "listenProtocols": "h2c" """, "listenProtocols")]
    [InlineData(""" "listen": "https://127.0.0.1:8443", "tls": { "certificate": "a", "key": "b" }, "listenProtocols": ["h2c"] """, "listenProtocols")]
    [InlineData(""" "admin": "http://127.0.0.1:8081/admin" """, "admin")]
    public void Parse_BadValue_NamesTheKey(string member, string key)
    {
        Assert.StartsWith($"{File}: {key}: ", ErrorWith(member));
    }

    [Fact]
    public void Parse_BadDuration_SaysWhatWorks()
    {
        var message = ErrorWith(""" "healthCheck": { "interval": "soon" } """);

        Assert.Contains("soon", message);
        Assert.Contains("250ms, 10s, 2m, 1h or 00:00:10", message);
    }

    [Fact]
    public void Parse_UnknownPolicy_ListsTheKnownOnes()
    {
        var message = ErrorWith(""" "balancing": "fastest" """);

        Assert.Contains("fastest", message);
        Assert.Contains("round-robin, least-connections, power-of-two, random", message);
    }

    [Fact]
    public void Parse_AnyError_IsOneLine()
    {
        Assert.DoesNotContain('\n', ErrorWith(""" "healthCheck": { "interval": "soon" } """));
        Assert.DoesNotContain('\n', Error("{\n\"backends\": [\n"));
    }

    [Theory]
    [InlineData("http://*:8080", "http://0.0.0.0:8080/")]
    [InlineData("http://+:8080", "http://0.0.0.0:8080/")]
    [InlineData("http://localhost:9000", "http://localhost:9000/")]
    [InlineData("http://[::1]:9000", "http://[::1]:9000/")]
    public void Parse_ListenForms_Accepted(string listen, string expected)
    {
        Assert.Equal(new Uri(expected), Parse($$"""{ {{OneBackend}}, "listen": "{{listen}}" }""").Listen);
    }

    // ---- the edge: TLS listen, listenProtocols, backend protocols and TLS (issue 8) ----------

    [Fact]
    public void Parse_HttpsListen_TlsPathsRelativeToTheFileAndH2ByDefault()
    {
        var config = Parse($$"""{ {{OneBackend}}, "listen": "https://127.0.0.1:8443", "tls": { "certificate": "certs/lb.pem", "key": "/abs/lb.key" } }""");

        Assert.Equal(new Uri("https://127.0.0.1:8443"), config.Listen);
        Assert.Equal(new TlsConfig("/etc/lb/certs/lb.pem", "/abs/lb.key"), config.Tls);
        Assert.Equal(Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2, config.ListenProtocols);
    }

    [Theory]
    [InlineData("""["h2c"]""", "http", Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2)]
    [InlineData("""["http1"]""", "http", Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1)]
    [InlineData("""["h2"]""", "https", Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2)]
    [InlineData("""["H2", "http1"]""", "https", Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1AndHttp2)]
    public void Parse_ListenProtocols(string list, string scheme, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols expected)
    {
        var tls = scheme == "https" ? """ "tls": { "certificate": "a", "key": "b" }, """ : "";
        var config = Parse($$"""{ {{OneBackend}}, {{tls}} "listen": "{{scheme}}://127.0.0.1:8443", "listenProtocols": {{list}} }""");

        Assert.Equal(expected, config.ListenProtocols);
    }

    [Fact]
    public void Parse_HttpListenWithTls_Warns()
    {
        var warnings = Warnings($$"""{ {{OneBackend}}, "tls": { "certificate": "a", "key": "b" } }""");

        Assert.Contains(warnings, w => w.Contains("tls: ignored", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_BackendProtocolsAndTls_Read()
    {
        var ca = Path.Combine(_dir, "ca.pem");
        using (var testCa = LoadBalancer.Tests.Support.TestCa.Create()) System.IO.File.WriteAllText(ca, testCa.Pem);
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""
            { "backends": [
                { "url": "http://127.0.0.1:8000" },
                { "url": "http://127.0.0.1:8001", "protocol": "h2c" },
                { "url": "https://10.0.0.2", "protocol": "h2", "tls": { "ca": "ca.pem", "serverName": "api.internal" } },
                { "url": "https://10.0.0.3", "tls": { "insecureSkipVerify": true } } ] }
            """), Path.Combine(_dir, "lb.json"));

        Assert.Equal([BackendProtocol.Http1, BackendProtocol.H2c, BackendProtocol.H2, BackendProtocol.Http1], config.Backends.Select(b => b.Protocol));
        Assert.Null(config.Backends[0].Tls);
        Assert.Equal("api.internal", config.Backends[2].Tls!.ServerName);
        Assert.Contains("BEGIN CERTIFICATE", config.Backends[2].Tls!.Ca);
        Assert.Equal(new BackendTlsConfig(null, null, true), config.Backends[3].Tls);
    }

    [Theory]
    [InlineData(""" { "url": "https://h", "protocol": "h2c" } """, "backends[0].protocol", "needs an http:// url")]
    [InlineData(""" { "url": "http://h", "protocol": "h2" } """, "backends[0].protocol", "needs an https:// url")]
    [InlineData(""" { "url": "http://h", "protocol": "h3" } """, "backends[0].protocol", "unknown protocol")]
    [InlineData(""" { "url": "http://h", "tls": { "insecureSkipVerify": true } } """, "backends[0].tls", "only for an https:// url")]
    [InlineData(""" { "url": "https://h", "tls": { "ca": "missing.pem" } } """, "backends[0].tls.ca", "file not found")]
    [InlineData(""" { "url": "https://h", "tls": { "insecureSkipVerify": "yes" } } """, "backends[0].tls.insecureSkipVerify", "true or false")]
    [InlineData(""" { "url": "https://h", "tls": { "serverName": "a b" } } """, "backends[0].tls.serverName", "not a host name")]
    public void Parse_BadBackendProtocolOrTls_NamesTheKey(string backend, string key, string problem)
    {
        var message = Error($$"""{ "backends": [ {{backend}} ] }""");

        Assert.StartsWith($"{File}: {key}: ", message);
        Assert.Contains(problem, message);
    }

    [Fact]
    public void Parse_CaFileWithoutCertificate_Refused()
    {
        System.IO.File.WriteAllText(Path.Combine(_dir, "ca.pem"), "nothing here\n");

        var message = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Encoding.UTF8.GetBytes(
            """{ "backends": [ { "url": "https://h", "tls": { "ca": "ca.pem" } } ] }"""), Path.Combine(_dir, "lb.json"))).Message;

        Assert.Contains("backends[0].tls.ca", message);
        Assert.Contains("no PEM certificate", message);
    }

    // A name that points at a device or a huge file: an error naming the key, at once, not a
    // read until memory runs out (BoundedFile).
    [Fact]
    public void Parse_CaFileIsADevice_RefusedAsTooLarge()
    {
        var message = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Encoding.UTF8.GetBytes(
            """{ "backends": [ { "url": "https://h", "tls": { "ca": "/dev/zero" } } ] }"""), Path.Combine(_dir, "lb.json"))).Message;

        Assert.Contains("backends[0].tls.ca: /dev/zero: larger than 4 MiB", message);
    }

    [Fact]
    public void Load_ConfigFileOver16MiB_RefusedNamingIt()
    {
        var path = Path.Combine(_dir, "lb.json");
        using (var file = System.IO.File.Create(path)) file.SetLength(BoundedFile.ConfigLimit + 1L); // zeros: never parsed

        var message = Assert.Throws<ConfigException>(() => ConfigLoader.Load(path)).Message;

        Assert.Equal($"{path}: {BoundedFile.Describe(BoundedFile.ConfigLimit)}", message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100_000)]
    [InlineData(BoundedFile.PemLimit)]
    [InlineData(BoundedFile.PemLimit + 1)]
    [InlineData(BoundedFile.PemLimit + 5000)]
    public void BoundedFile_Read_TheBytesOrLimitPlusOne(int size)
    {
        var path = Path.Combine(_dir, "f.bin");
        var bytes = new byte[size];
        new Random(size).NextBytes(bytes);
        System.IO.File.WriteAllBytes(path, bytes);

        var read = BoundedFile.Read(path, BoundedFile.PemLimit);

        Assert.Equal(bytes.AsSpan(0, Math.Min(size, BoundedFile.PemLimit + 1)).ToArray(), read);
        Assert.Equal(size > BoundedFile.PemLimit, BoundedFile.TooLarge(read, BoundedFile.PemLimit));
    }

    // ---- unknown keys: a warning each, not an error (unless strict, below) -------------------

    static List<string> Warnings(string json)
    {
        var warnings = new List<string>();
        ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), File, warnings);
        return warnings;
    }

    [Fact]
    public void Parse_EveryDocumentedKey_NoWarning()
    {
        var json = $$"""
            {
              "$schema": "https://example.test/lb.schema.json",
              "listen": "http://127.0.0.1:8080", "admin": "http://127.0.0.1:8081", "balancing": "random",
              "backends": [ { "url": "http://127.0.0.1:8000", "weight": 2 } ],
              "healthCheck": { "path": "/h", "interval": "5s", "timeout": "1s", "healthyThreshold": 1, "unhealthyThreshold": 1 },
              "passiveHealth": { "consecutiveFailures": 3, "ejectFor": "30s" },
              "pool": { "maxConnectionsPerBackend": 8, "idleTimeout": "60s", "lifetime": "5m", "connectTimeout": "2s" },
              "requestTimeout": "30s", "retries": 2
            }
            """;

        Assert.Empty(Warnings(json));
    }

    [Fact]
    public void Parse_KeysInAnotherCase_NoWarning()
    {
        Assert.Empty(Warnings("""{ "BACKENDS": [ { "URL": "http://127.0.0.1:8000" } ], "HealthCheck": { "Interval": "5s" } }"""));
    }

    [Fact]
    public void Parse_MisspeltKeyInEachSection_OneWarningEachWithTheNearestKey()
    {
        var warnings = Warnings("""
            {
              "backend": [],
              "backends": [ { "url": "http://127.0.0.1:8000", "wieght": 2 } ],
              "healthCheck": { "intervall": "5s" },
              "passiveHealth": { "ejectfor2": "1s" },
              "pool": { "idleTimout": "1s" },
              "retrys": 1
            }
            """);

        Assert.Equal(
        [
            $"{File}: backend: unknown key, ignored (did you mean backends?)",
            $"{File}: retrys: unknown key, ignored (did you mean retries?)",
            $"{File}: healthCheck.intervall: unknown key, ignored (did you mean healthCheck.interval?)",
            $"{File}: passiveHealth.ejectfor2: unknown key, ignored (did you mean passiveHealth.ejectFor?)",
            $"{File}: pool.idleTimout: unknown key, ignored (did you mean pool.idleTimeout?)",
            $"{File}: backends[0].wieght: unknown key, ignored (did you mean backends[0].weight?)",
        ], warnings);
    }

    [Fact]
    public void Parse_UnknownKeyNothingLike_WarningWithoutAGuess()
    {
        var warning = Assert.Single(Warnings($$"""{ {{OneBackend}}, "tracing": { "sampler": "x" } }"""));

        Assert.Equal($"{File}: tracing: unknown key, ignored", warning);
    }

    [Fact]
    public void Parse_UnknownKey_TheRestStillApplies()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""{ {{OneBackend}}, "retries": 5, "colour": "blue" }"""), File, []);

        Assert.Equal(5, config.Retries);
    }

    // ---- strict (--strict): an unknown key is the error, in the warning's words ---------------

    static string StrictError(string json) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), File, [], strict: true)).Message;

    [Fact]
    public void Parse_StrictMisspeltKey_ErrorNamingTheKeyAndTheNearestOne()
    {
        Assert.Equal($"{File}: healthCheck.intervall: unknown key (did you mean healthCheck.interval?)",
            StrictError($$"""{ {{OneBackend}}, "healthCheck": { "intervall": "5s" } }"""));
        Assert.Equal($"{File}: backends[0].wieght: unknown key (did you mean backends[0].weight?)",
            StrictError("""{ "backends": [ { "url": "http://127.0.0.1:8000", "wieght": 2 } ] }"""));
        Assert.Equal($"{File}: colour: unknown key", StrictError($$"""{ {{OneBackend}}, "colour": "blue" }"""));
    }

    [Fact]
    public void Parse_StrictWithoutWarningsList_StillAnError()
    {
        Assert.Throws<ConfigException>(() =>
            ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""{ {{OneBackend}}, "colour": "blue" }"""), File, warnings: null, strict: true));
    }

    [Fact]
    public void Parse_StrictEveryKeyKnown_Loads()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""{ {{OneBackend}}, "HealthCheck": { "Interval": "5s" } }"""), File, [], strict: true);

        Assert.Equal(TimeSpan.FromSeconds(5), config.HealthCheck.Interval);
    }
}
