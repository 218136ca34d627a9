using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

public sealed class SmokeTests
{
    [Fact]
    public async Task Get_TwoBackends_AlternatesBetweenThem()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b));

        var bodies = new List<string>();
        for (var i = 0; i < 4; i++) bodies.Add(await lb.Client.GetStringAsync("/"));

        Assert.Equal(["backend-a", "backend-b", "backend-a", "backend-b"], bodies);
    }
}
