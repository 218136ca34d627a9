using LoadBalancer.Balancing;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Probing;

namespace LoadBalancer.Tests.Balancing;

// BackendEntry values for the policies, which see nothing but the eligible entries.
public static class PolicyTestEntries
{
    public static BackendEntry[] Create(params int[] weights) =>
        weights.Select((w, i) => new BackendEntry(
            new BackendRoute(i + 1, $"http://{(char)('a' + i)}", $"http://{(char)('a' + i)}:80", new HttpMessageInvoker(MockHttpHandler.NeverSends())), w))
            .ToArray();

    public static string Name(BackendEntry e) => e.Route.Url["http://".Length..];

    /// <summary>Names of n picks; each pick's in-flight slot is released at once, as a fast request would.</summary>
    public static string Picks(IBalancingPolicy policy, BackendEntry[] eligible, int n) =>
        string.Join(" ", Enumerable.Range(0, n).Select(_ => Name(policy.Choose(eligible))));

    public static Dictionary<string, int> Count(IBalancingPolicy policy, BackendEntry[] eligible, int n)
    {
        var counts = eligible.ToDictionary(Name, _ => 0);
        for (var i = 0; i < n; i++) counts[Name(policy.Choose(eligible))]++;
        return counts;
    }
}
