using LoadBalancer.Configuration;

namespace LoadBalancer.Tests.Pipeline;

// LbConfig values for unit tests, built directly (ConfigLoader has its own tests). The defaults
// are the contract's; a test changes what it needs with `with { ... }`.
public static class TestConfigs
{
    public static BackendConfig Backend(string url, int weight = 1)
    {
        var key = ConfigLoader.Normalise(new Uri(url));
        return new BackendConfig(url, key, new Uri(key + "/"), weight);
    }

    public static LbConfig Create(params BackendConfig[] backends) => new(
        ConfigLoader.DefaultListen,
        ConfigLoader.DefaultAdmin,
        BalancingNames.RoundRobin,
        backends,
        new HealthCheckConfig("/healthcheck", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2), HealthyThreshold: 2, UnhealthyThreshold: 2),
        new PassiveHealthConfig(ConsecutiveFailures: 3, EjectFor: TimeSpan.FromSeconds(30)),
        new PoolConfig(1024, TimeSpan.FromSeconds(60), TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(2)),
        RequestTimeout: TimeSpan.FromSeconds(30),
        Retries: 2,
        StreamIdleTimeout: TimeSpan.FromSeconds(60),
        TunnelIdleTimeout: TimeSpan.FromHours(1),
        Limits: LimitsConfig.Default);

    public static LbConfig Create(params string[] urls) => Create(urls.Select(u => Backend(u)).ToArray());
}
