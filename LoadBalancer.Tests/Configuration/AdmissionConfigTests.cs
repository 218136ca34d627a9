using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Tests.Pipeline;

namespace LoadBalancer.Tests.Configuration;

// The admission keys of lb.json (contract, "Admission" and its rows): defaults, values, the
// one-line errors naming each key as the contract spells it, and a reload's words for them.
public sealed class AdmissionConfigTests
{
    const string File = "/etc/lb/lb.json";
    const string OneBackend = """ "backends": [ { "url": "http://127.0.0.1:8000" } ] """;

    static LbConfig Parse(string json) => ConfigLoader.Parse(Encoding.UTF8.GetBytes(json), File);

    static string ErrorWith(string member) =>
        Assert.Throws<ConfigException>(() => Parse($$"""{ {{OneBackend}}, {{member}} }""")).Message;

    [Fact]
    public void Parse_NoAdmissionKeys_ContractDefaults()
    {
        var config = Parse($$"""{ {{OneBackend}} }""");

        Assert.Equal(new AdmissionConfig(0, 1000, TimeSpan.FromSeconds(5), 20, 10, TimeSpan.Zero), config.Admission);
        Assert.Equal(50, config.PassiveHealth.MaxEjectionPercent);
        Assert.Null(config.Backends[0].MaxInFlight);
    }

    [Fact]
    public void Parse_EveryAdmissionKey_Read()
    {
        var config = Parse("""
            {
              "backends": [ { "url": "http://a:1", "maxInFlight": 7 }, { "url": "http://b:2", "maxInFlight": 0 } ],
              "limits": { "maxInFlightPerBackend": 32 },
              "queue": { "size": 10, "timeout": "250ms" },
              "retryBudget": { "percent": 5, "minPerSecond": 0 },
              "slowStart": "30s",
              "passiveHealth": { "maxEjectionPercent": 100 }
            }
            """);

        Assert.Equal(new AdmissionConfig(32, 10, TimeSpan.FromMilliseconds(250), 5, 0, TimeSpan.FromSeconds(30)), config.Admission);
        Assert.Equal([7, 0], config.Backends.Select(b => b.MaxInFlight));
        Assert.Equal(100, config.PassiveHealth.MaxEjectionPercent);
    }

    [Fact]
    public void Parse_SlowStartZero_Off()
    {
        Assert.Equal(TimeSpan.Zero, Parse($$"""{ {{OneBackend}}, "slowStart": "0s" }""").Admission.SlowStart);
    }

    [Theory]
    [InlineData("""  "limits": { "maxInFlightPerBackend": -1 }  """, "limits.maxInFlightPerBackend: -1 is out of range")]
    [InlineData("""  "queue": { "size": "many" }  """, "queue.size: must be a whole number")]
    [InlineData("""  "queue": { "timeout": "0s" }  """, "queue.timeout: 0s must be more than zero")]
    [InlineData("""  "retryBudget": { "percent": 101 }  """, "retryBudget.percent: 101 is out of range")]
    [InlineData("""  "retryBudget": { "minPerSecond": 1.5 }  """, "retryBudget.minPerSecond: must be a whole number")]
    [InlineData("""  "slowStart": "soon"  """, "slowStart: soon is not a duration")]
    [InlineData("""  "slowStart": "-1s"  """, "slowStart: -1s is not a duration")]
    [InlineData("""  "passiveHealth": { "maxEjectionPercent": 120 }  """, "passiveHealth.maxEjectionPercent: 120 is out of range")]
    [InlineData("""  "queue": 5  """, "queue: must be a JSON object")]
    public void Parse_BadAdmissionValue_OneLineNamingTheKey(string member, string expected)
    {
        Assert.StartsWith($"{File}: {expected}", ErrorWith(member));
    }

    [Fact]
    public void Parse_BadBackendMaxInFlight_NamesTheBackend()
    {
        var message = Assert.Throws<ConfigException>(() => Parse("""{ "backends": [ { "url": "http://a:1" }, { "url": "http://b:2", "maxInFlight": -3 } ] }""")).Message;
        Assert.StartsWith($"{File}: backends[1].maxInFlight: -3 is out of range", message);
    }

    [Fact]
    public void Describe_AdmissionChanges_UseTheContractsKeys()
    {
        var before = TestConfigs.Create("http://a:1");
        var after = before with
        {
            Backends = [before.Backends[0] with { MaxInFlight = 4 }],
            PassiveHealth = before.PassiveHealth with { MaxEjectionPercent = 30 },
            Admission = new AdmissionConfig(8, 20, TimeSpan.FromSeconds(1), 10, 5, TimeSpan.FromSeconds(20)),
        };

        Assert.Equal(
            "http://a:1 maxInFlight default -> 4, passiveHealth.maxEjectionPercent 50 -> 30, limits.maxInFlightPerBackend 0 -> 8, "
            + "queue.size 1000 -> 20, queue.timeout 5s -> 1s, retryBudget.percent 20 -> 10, retryBudget.minPerSecond 10 -> 5, slowStart off -> 20s",
            ConfigDiff.Describe(before, after));
    }
}
