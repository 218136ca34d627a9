using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Walkthrough;

// docs/tutorial-flaws.md, flaw (a): the tutorial-style round-robin sends everything to one
// backend once another is down. Here the policy only ever sees the eligible backends.
public sealed class TutorialFlawsTests
{
    [Fact]
    public void Choose_AllThreeUp_TakesTurns()
    {
        var table = NewTable();

        Assert.Equal(["a", "b", "c", "a", "b", "c"], Picks(table, 6));
    }

    [Fact]
    public void Choose_OneOfThreeEqualBackendsDown_TheOtherTwoAlternate()
    {
        var table = NewTable();
        var b = table.Entries.Single(e => e.Route.Url == "http://b.test").Route;

        table.Apply(new ProbeResult(b, DateTimeOffset.UnixEpoch, null, TimeSpan.FromMilliseconds(1), "connection refused"));

        Assert.Equal(BackendHealth.Unhealthy, table.Entries.Single(e => e.Route == b).State);
        Assert.Equal(["a", "c", "a", "c", "a", "c"], Picks(table, 6)); // never "all to c"
    }

    // Picks n times, releasing each pick as a handler would, and names the backends chosen.
    static string[] Picks(BackendTable table, int n)
    {
        var names = new string[n];
        for (var i = 0; i < n; i++)
        {
            var pick = table.Choose(null);
            table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
            names[i] = pick.Backend!.Url["http://".Length..^".test".Length];
        }
        return names;
    }

    static BackendTable NewTable()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            {
              "backends": [ { "url": "http://a.test" }, { "url": "http://b.test" }, { "url": "http://c.test" } ],
              "healthCheck": { "unhealthyThreshold": 1 }
            }
            """), "lb.json");
        var id = 0;
        return new BackendTable(config,
            b => new BackendRoute(++id, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())),
            new FakeTimeProvider(), _ => { });
    }
}
