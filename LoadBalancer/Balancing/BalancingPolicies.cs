using LoadBalancer.Configuration;

namespace LoadBalancer.Balancing;

public static class BalancingPolicies
{
    public static IBalancingPolicy Create(string name, Random? random = null) => name switch
    {
        BalancingNames.RoundRobin => new RoundRobinPolicy(),
        BalancingNames.LeastConnections => new LeastConnectionsPolicy(),
        BalancingNames.PowerOfTwo => new PowerOfTwoPolicy(random ?? Random.Shared),
        BalancingNames.Random => new RandomPolicy(random ?? Random.Shared),
        _ => throw new ArgumentException($"unknown balancing policy {name}", nameof(name)),
    };
}
