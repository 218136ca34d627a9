using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Exercises;

// Exercise 2 in docs/exercises.md: slow start. A backend that comes back (unhealthy -> healthy)
// gets a small share of the traffic at first, growing to its full share over "slowStart".
// Fails until done: today it gets its full share at once.
[Trait("Category", "Exercise")]
public sealed class SlowStartExerciseTests
{
    [ExerciseFact]
    public void Choose_BackendJustRecovered_GetsASmallShareThatGrowsToItsFullShare()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            {
              "backends": [ { "url": "http://a.test" }, { "url": "http://b.test" } ],
              "healthCheck": { "healthyThreshold": 1, "unhealthyThreshold": 1 },
              "slowStart": "30s"
            }
            """), "lb.json");
        var id = 0;
        var table = new BackendTable(config, x => new BackendRoute(++id, x.Url, x.Key, new HttpMessageInvoker(new SocketsHttpHandler())),
            time, _ => { });
        var b = table.Entries[1].Route;

        table.Apply(new ProbeResult(b, time.GetUtcNow(), null, TimeSpan.Zero, "connection refused")); // b goes down
        table.Apply(new ProbeResult(b, time.GetUtcNow(), 200, TimeSpan.Zero, null));                  // ...and comes back now

        Assert.InRange(PicksOf(table, "http://b.test", 100), 0, 20);  // just back: a small share (today: 50)
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.InRange(PicksOf(table, "http://b.test", 100), 45, 55); // slow start over: its full half
    }

    static int PicksOf(BackendTable table, string url, int n)
    {
        var count = 0;
        for (var i = 0; i < n; i++)
        {
            var pick = table.Choose(null);
            table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
            if (pick.Backend!.Url == url) count++;
        }
        return count;
    }
}
