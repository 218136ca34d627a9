using System.Text;
using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Exercises;

// Exercise 1 in docs/exercises.md: a "first" policy (HAProxy's "balance first"): every request
// goes to the first eligible backend in lb.json order; the others are standbys. Fails until done.
[Trait("Category", "Exercise")]
public sealed class FirstPolicyExerciseTests
{
    [ExerciseFact]
    public void Create_First_AlwaysChoosesTheFirstEligibleBackend()
    {
        var policy = BalancingPolicies.Create("first"); // today: ArgumentException, unknown policy
        var (a, b, c) = (Entry("http://a.test"), Entry("http://b.test"), Entry("http://c.test"));

        Assert.Same(a, policy.Choose([a, b, c]));
        Assert.Same(a, policy.Choose([a, b, c])); // not a rotation: a again
        Assert.Same(b, policy.Choose([b, c]));    // a not eligible: the next one in order
    }

    [ExerciseFact]
    public void Parse_BalancingFirst_IsAValidPolicy()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "balancing": "first", "backends": [ { "url": "http://a.test" } ] }
            """), "lb.json"); // today: ConfigException, unknown balancing policy

        Assert.Equal("first", config.Balancing);
    }

    [ExerciseFact]
    public void Choose_FirstBackendDownThenUp_StandbyTakesOverAndHandsBack()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            {
              "balancing": "first",
              "backends": [ { "url": "http://a.test" }, { "url": "http://b.test" } ],
              "healthCheck": { "healthyThreshold": 1, "unhealthyThreshold": 1 }
            }
            """), "lb.json");
        var id = 0;
        var table = new BackendTable(config, x => new BackendRoute(++id, x.Url, x.Key, new HttpMessageInvoker(new SocketsHttpHandler())),
            new FakeTimeProvider(), _ => { });
        var a = table.Entries[0].Route;

        Assert.Equal("http://a.test", Pick(table));
        table.Apply(new ProbeResult(a, DateTimeOffset.UnixEpoch, null, TimeSpan.Zero, "connection refused"));
        Assert.Equal("http://b.test", Pick(table));
        table.Apply(new ProbeResult(a, DateTimeOffset.UnixEpoch, 200, TimeSpan.Zero, null));
        Assert.Equal("http://a.test", Pick(table));
    }

    static string Pick(BackendTable table)
    {
        var pick = table.Choose(null);
        table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
        return pick.Backend!.Url;
    }

    static int _nextId;

    // Each route its own Id, as BackendPools gives them: a reload tells routes apart by Id.
    static BackendEntry Entry(string url) =>
        new(new BackendRoute(Interlocked.Increment(ref _nextId), url, url + ":80", new HttpMessageInvoker(new SocketsHttpHandler())), 1);
}
