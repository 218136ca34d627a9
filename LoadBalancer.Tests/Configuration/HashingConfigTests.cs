using System.Text;
using LoadBalancer.Configuration;

namespace LoadBalancer.Tests.Configuration;

// lb.json's hashing, affinity and discovery keys: defaults, values, and one line naming the key
// for anything that cannot be used.
public sealed class HashingConfigTests
{
    const string File = "/etc/lb/lb.json";
    const string OneBackend = """ "backends": [ { "url": "http://127.0.0.1:8000" } ] """;

    static LbConfig Parse(string json, List<string>? warnings = null) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), File, warnings);
    static string Error(string json) => Assert.Throws<ConfigException>(() => Parse(json)).Message;

    [Fact]
    public void Parse_Nothing_DefaultsAreClientIpFactor125AffinityOffDiscoveryEvery10s()
    {
        var config = Parse($$"""{ {{OneBackend}} }""");
        Assert.Equal(HashKeyConfig.Default, config.HashKey);
        Assert.Equal(1.25, config.HashBalanceFactor);
        Assert.Null(config.Affinity);
        Assert.Equal(TimeSpan.FromSeconds(10), config.Discovery.Interval);
        Assert.Empty(config.Discovery.NameserverEndPoints());
        Assert.False(config.Backends[0].Discover);
    }

    [Theory]
    [InlineData("header:X-User", HashKeySource.Header, "X-User")]
    [InlineData("cookie:session", HashKeySource.Cookie, "session")]
    [InlineData("client-ip", HashKeySource.ClientIp, null)]
    [InlineData("PATH", HashKeySource.Path, null)]
    public void Parse_HashKey_Read(string text, HashKeySource source, string? name)
    {
        var config = Parse($$"""{ {{OneBackend}}, "balancing": "consistent-hash", "hashKey": "{{text}}", "hashBalanceFactor": 2 }""");
        Assert.Equal(BalancingNames.ConsistentHash, config.Balancing);
        Assert.Equal(new HashKeyConfig(source, name), config.HashKey);
        Assert.Equal(2, config.HashBalanceFactor);
    }

    [Fact]
    public void Parse_AffinityAndDiscovery_Read()
    {
        var config = Parse($$"""
            {
              "backends": [ { "url": "http://web.svc.cluster.local:8080", "discover": "dns" } ],
              "affinity": { "cookie": "lb", "secret": "s3cret", "maxAge": "1h" },
              "discovery": { "interval": "30s", "nameservers": ["127.0.0.1:5353", "10.0.0.10"] }
            }
            """);
        Assert.Equal(new AffinityConfig("lb", "s3cret", TimeSpan.FromHours(1)), config.Affinity);
        Assert.True(config.Backends[0].Discover);
        Assert.Equal(TimeSpan.FromSeconds(30), config.Discovery.Interval);
        Assert.Equal(["127.0.0.1:5353", "10.0.0.10:53"], config.Discovery.NameserverEndPoints().Select(e => e.ToString()));
    }

    [Fact]
    public void Parse_AffinityWithoutSecret_WarnsThatInstancesWillNotAgree()
    {
        var warnings = new List<string>();
        var config = Parse($$"""{ {{OneBackend}}, "affinity": { "cookie": "lb" } }""", warnings);
        Assert.Null(config.Affinity!.Secret);
        Assert.Contains(warnings, w => w.Contains("affinity.secret: not set", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(""" "hashKey": "header:" """, "hashKey")]
    [InlineData(""" "hashKey": "query:x" """, "hashKey")]
    [InlineData(""" "hashKey": "client-ip:x" """, "hashKey")]
    [InlineData(""" "hashKey": "header:X User" """, "hashKey")]
    [InlineData(""" "hashKey": 3 """, "hashKey")]
    [InlineData(""" "hashBalanceFactor": 0.5 """, "hashBalanceFactor")]
    [InlineData(""" "hashBalanceFactor": -1 """, "hashBalanceFactor")]
    [InlineData(""" "hashBalanceFactor": "2" """, "hashBalanceFactor")]
    [InlineData(""" "affinity": { "cookie": "a b" } """, "affinity.cookie")]
    [InlineData(""" "affinity": { "cookie": "lb", "secret": "" } """, "affinity.secret")]
    [InlineData(""" "affinity": { "cookie": "lb", "maxAge": "soon" } """, "affinity.maxAge")]
    [InlineData(""" "affinity": "lb" """, "affinity")]
    [InlineData(""" "discovery": { "interval": "0s" } """, "discovery.interval")]
    [InlineData(""" "discovery": { "nameservers": "127.0.0.1" } """, "discovery.nameservers")]
    [InlineData(""" "discovery": { "nameservers": ["dns.example"] } """, "discovery.nameservers")]
    public void Parse_BadValue_NamesTheKey(string json, string key)
    {
        var message = Error($$"""{ {{OneBackend}}, {{json}} }""");
        Assert.StartsWith($"{File}: {key}: ", message);
    }

    [Theory]
    [InlineData("http://10.0.0.1:8080", "\"10.0.0.1\" is an IP address")]
    [InlineData("http://[::1]:8080", "is an IP address")]
    public void Parse_DiscoverWithAnAddress_IsAnErrorNamingTheKey(string url, string problem)
    {
        var message = Error($$"""{ "backends": [ { "url": "http://a:1" }, { "url": "{{url}}", "discover": "dns" } ] }""");
        Assert.StartsWith($"{File}: backends[1].discover: ", message);
        Assert.Contains(problem, message);
    }

    [Fact]
    public void Parse_DiscoverOtherThanDns_NamesTheKey()
    {
        Assert.StartsWith($"{File}: backends[0].discover: unknown discovery \"consul\"",
            Error("""{ "backends": [ { "url": "http://svc:1", "discover": "consul" } ] }"""));
    }

    [Fact]
    public void Describe_NewKeysChanged_NamedWithoutTheSecret()
    {
        var before = Parse($$"""{ {{OneBackend}}, "affinity": { "cookie": "lb", "secret": "one" } }""");
        var after = Parse($$"""{ {{OneBackend}}, "hashKey": "path", "hashBalanceFactor": 0, "affinity": { "cookie": "lb", "secret": "two", "maxAge": "1h" }, "discovery": { "interval": "5s" } }""");
        var text = ConfigDiff.Describe(before, after);
        Assert.Equal("hashKey client-ip -> path, hashBalanceFactor 1.25 -> 0, affinity.secret changed, affinity.maxAge none -> 1h, discovery.interval 10s -> 5s", text);
        Assert.DoesNotContain("two", text);
    }
}
