using LoadBalancer.Configuration;

namespace LoadBalancer.Balancing;

public static class BalancingPolicies
{
    public static IBalancingPolicy Create(string name, Random? random = null, double hashBalanceFactor = 1.25) => name switch
    {
        BalancingNames.RoundRobin => new RoundRobinPolicy(),
        BalancingNames.LeastConnections => new LeastConnectionsPolicy(),
        BalancingNames.PowerOfTwo => new PowerOfTwoPolicy(random ?? Random.Shared),
        BalancingNames.Random => new RandomPolicy(random ?? Random.Shared),
        BalancingNames.ConsistentHash => new ConsistentHashPolicy(hashBalanceFactor),
        _ => throw new ArgumentException($"unknown balancing policy {name}", nameof(name)),
    };
}
