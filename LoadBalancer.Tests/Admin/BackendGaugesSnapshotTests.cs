using CsCheck;
using LoadBalancer.Admin;

namespace LoadBalancer.Tests.Admin;

// The gauges the state task publishes a turn at a time: a base plus the changes since, folded
// into a new base when they outnumber the backends. Whatever the changes, a snapshot reads as
// the plain array it stands for, and one already published never changes.
public sealed class BackendGaugesSnapshotTests
{
    [Fact]
    public void With_AnyTurnsOfChanges_ReadsAsThePlainArrayAndOldSnapshotsStayAsTheyWere()
    {
        var turn = Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 5], Gen.Bool).Array[0, 6]; // position, in flight, eligible
        Gen.Select(Gen.Int[1, 200], turn.Array[1, 300]).Sample((count, turns) =>
        {
            var model = Enumerable.Range(0, count).Select(i => new BackendGauges($"http://b{i}", 0, 0, true)).ToArray();
            var snapshot = BackendGaugesSnapshot.Of([.. model]);
            var history = new List<(BackendGaugesSnapshot, BackendGauges[])> { (snapshot, model.ToArray()) };
            foreach (var changes in turns)
            {
                var applied = changes.Select(c => (c.Item1 % count, model[c.Item1 % count] with { InFlight = c.Item2, Eligible = c.Item3 })).ToArray();
                foreach (var (position, gauges) in applied) model[position] = gauges;
                snapshot = snapshot.With(applied);
                history.Add((snapshot, model.ToArray()));
            }
            foreach (var (published, then) in history)
            {
                Assert.Equal(then, published);
                Assert.Equal(then.Length, published.Count);
                Assert.Equal(then[^1], published[then.Length - 1]);
            }
        }, iter: 200);
    }
}
