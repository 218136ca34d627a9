using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Exercises;

// Exercise 3 in docs/exercises.md: passiveHealth.maxEjectionPercent (Envoy's max_ejection_percent).
// Passive health never ejects a backend if that would leave more than this percentage of the
// backends ejected. Fails until done: today the second backend is ejected too.
[Trait("Category", "Exercise")]
public sealed class MaxEjectionPercentExerciseTests
{
    [ExerciseFact]
    public void Apply_SecondOfTwoBackendsFailsWithCapAtHalf_StaysEligibleUntilTheFirstReturns()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            {
              "backends": [ { "url": "http://a.test" }, { "url": "http://b.test" } ],
              "passiveHealth": { "consecutiveFailures": 1, "ejectFor": "30s", "maxEjectionPercent": 50 }
            }
            """), "lb.json");
        var id = 0;
        var changes = new List<StateChange>();
        var table = new BackendTable(config, x => new BackendRoute(++id, x.Url, x.Key, new HttpMessageInvoker(new SocketsHttpHandler())),
            time, changes.Add);
        var (a, b) = (table.Entries[0], table.Entries[1]);

        Fail(table, a.Route);
        Assert.Equal(BackendHealth.Ejected, a.State); // 1 of 2 ejected: 50%, allowed

        Fail(table, b.Route);
        Assert.Equal(BackendHealth.Unknown, b.State);  // 2 of 2 would be 100%: b stays (today: ejected)
        Assert.True(b.Eligible);
        Assert.DoesNotContain(changes, c => c.Backend == b.Route && c.State == BackendHealth.Ejected);

        time.Advance(TimeSpan.FromSeconds(30)); // a's ejection ends
        table.Tick();
        Fail(table, b.Route);
        Assert.Equal(BackendHealth.Ejected, b.State); // now 1 of 2 again: allowed
    }

    // One real request to this backend that could not connect.
    static void Fail(BackendTable table, BackendRoute backend)
    {
        var others = table.Entries.Select(e => e.Route).Where(r => r != backend).ToArray();
        var pick = table.Choose(others);
        Assert.Same(backend, pick.Backend);
        table.Apply(new RequestOutcome(backend, Outcome.ConnectRefused, 0));
    }
}
