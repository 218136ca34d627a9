using LoadBalancer.Configuration;
using LoadBalancer.Tests.Pipeline;

namespace LoadBalancer.Tests.Configuration;

// The words a reload's log line uses for what changed: keys as spelt in lb.json, old -> new.
public sealed class ConfigDiffTests
{
    const string A = "http://a:1", B = "http://b:2", C = "http://c:3";

    [Fact]
    public void Describe_PoolTimeoutAndBackends_NamesEachKeyOldAndNew()
    {
        var before = TestConfigs.Create(A, B);
        var after = TestConfigs.Create(A, C) with
        {
            Pool = before.Pool with { IdleTimeout = TimeSpan.FromSeconds(10) },
            RequestTimeout = TimeSpan.FromSeconds(5),
        };

        Assert.Equal("backends added: http://c:3, backends removed: http://b:2, pool.idleTimeout 1m -> 10s, requestTimeout 30s -> 5s",
            ConfigDiff.Describe(before, after));
    }

    [Fact]
    public void Describe_EverySection_UsesTheContractsKeys()
    {
        var before = TestConfigs.Create(A);
        var after = before with
        {
            Balancing = BalancingNames.LeastConnections,
            HealthCheck = before.HealthCheck with { Path = "/up", Interval = TimeSpan.FromMilliseconds(500), UnhealthyThreshold = 3 },
            PassiveHealth = new PassiveHealthConfig(5, TimeSpan.FromMinutes(2)),
            Pool = before.Pool with { MaxConnectionsPerBackend = 8, ConnectTimeout = TimeSpan.FromMilliseconds(250) },
            Retries = 0,
        };

        Assert.Equal(
            "balancing round-robin -> least-connections, healthCheck.path /healthcheck -> /up, healthCheck.interval 10s -> 500ms, "
            + "healthCheck.unhealthyThreshold 2 -> 3, passiveHealth.consecutiveFailures 3 -> 5, passiveHealth.ejectFor 30s -> 2m, "
            + "pool.maxConnectionsPerBackend 1024 -> 8, pool.connectTimeout 2s -> 250ms, retries 2 -> 0",
            ConfigDiff.Describe(before, after));
    }

    [Fact]
    public void Describe_WeightAndOrder_SameBackendByNormalisedUrl()
    {
        var before = TestConfigs.Create(TestConfigs.Backend(A), TestConfigs.Backend(B));

        Assert.Equal("http://A:1/ weight 1 -> 4", // the same backend, not one added and one removed
            ConfigDiff.Describe(before, TestConfigs.Create(TestConfigs.Backend("http://A:1/", 4), TestConfigs.Backend(B))));
        Assert.Equal("backends reordered", ConfigDiff.Describe(before, TestConfigs.Create(B, A)));
    }

    [Fact]
    public void Describe_Nothing_SaysSo()
    {
        Assert.Equal(ConfigDiff.NoChange, ConfigDiff.Describe(TestConfigs.Create(A), TestConfigs.Create(A)));
    }
}
