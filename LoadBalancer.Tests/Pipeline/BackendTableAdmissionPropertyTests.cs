using CsCheck;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The admission rules under any interleaving: random sequences of picks (some retries with a
// tried list), outcomes, probe results, reloads, client aborts (with their PickCancelled on time
// or late) and clock steps, applied to one BackendTable as the state task would. After every
// step: no backend took a slot at its limit, in-flight counts are exactly the slots handed out
// and not yet released, every pick is answered exactly once or waits in the queue, the queue is
// FIFO (no waiter waits while an older one was served a backend it could have used, and none
// waits while a slot it can use is free), no waiter outlives its deadline, and the queue never
// holds more than queue.size. At the end every slot is released exactly once: in-flight 0.
public sealed class BackendTableAdmissionPropertyTests
{
    static readonly string[] Urls = ["http://a:1", "http://b:2", "http://c:3"];

    abstract record Op;
    sealed record AskOp(int TriedMask) : Op;                 // 0: a first attempt; else a retry that tried these
    sealed record ReleaseOp(int Index, int Outcome) : Op;     // the outcome of one slot handed out
    sealed record ProbeOp(int Backend, bool Pass) : Op;
    sealed record ReloadOp(int Limit, int QueueSize, int TimeoutMs) : Op;
    sealed record AbortOp(int Index, bool CancelNow) : Op;    // a waiting client leaves; its message now or later
    sealed record DeliverCancelsOp : Op;                     // the late PickCancelled messages arrive
    sealed record AdvanceOp(int Ms) : Op;                     // the clock moves; the state task's timer fires

    static readonly Gen<Op> Ops = Gen.Frequency(
        (6, Gen.Frequency((3, Gen.Const(0)), (1, Gen.Int[1, 7])).Select(m => (Op)new AskOp(m))),
        (5, Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 2], (i, o) => (Op)new ReleaseOp(i, o))),
        (2, Gen.Select(Gen.Int[0, 2], Gen.Bool, (b, p) => (Op)new ProbeOp(b, p))),
        (1, Gen.Select(Gen.Int[0, 3], Gen.Int[0, 4], Gen.Int[1, 3000], (l, q, t) => (Op)new ReloadOp(l, q, t))),
        (2, Gen.Select(Gen.Int[0, 1000], Gen.Bool, (i, now) => (Op)new AbortOp(i, now))),
        (1, Gen.Const((Op)new DeliverCancelsOp())),
        (2, Gen.Int[1, 2500].Select(ms => (Op)new AdvanceOp(ms))));

    static readonly Outcome[] Outcomes = [Outcome.Response, Outcome.ConnectRefused, Outcome.ClientAbort];

    [Fact]
    public void Pick_AnyInterleaving_KeepsLimitsQueueOrderAndEverySlotAndAnswerExactlyOnce()
    {
        Gen.Select(Gen.Int[1, 3], Gen.Int[0, 4], Ops.Array[1, 120])
            .Sample((limit, queueSize, ops) => Run(limit, queueSize, ops), iter: 400, threads: 1);
    }

    static void Run(int limit, int queueSize, Op[] ops)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var routes = new RouteFactory();
        var config = TestConfigs.Create(Urls);
        config = config with
        {
            HealthCheck = config.HealthCheck with { HealthyThreshold = 1, UnhealthyThreshold = 1 },
            PassiveHealth = config.PassiveHealth with { ConsecutiveFailures = 2, EjectFor = TimeSpan.FromSeconds(3) },
            Admission = config.Admission with { MaxInFlightPerBackend = limit, QueueSize = queueSize, QueueTimeout = TimeSpan.FromSeconds(2) },
        };
        var table = new BackendTable(config, routes.Create, time, _ => { });
        var asks = new List<Ask>();          // every pick, oldest first
        var seen = new HashSet<Ask>();       // the answered ones, each counted once
        var held = new List<Ask>();          // answered with a backend, outcome not yet told
        var lateCancels = new List<Waiter>();

        foreach (var op in ops)
        {
            var before = table.Entries.ToDictionary(e => e.Route.Url, e => e.InFlight);
            switch (op)
            {
                case AskOp a:
                    var ask = Ask.Send(table, a.TriedMask == 0 ? null
                        : Enumerable.Range(0, Urls.Length).Where(i => (a.TriedMask & 1 << i) != 0).Select(i => routes[Urls[i]]).ToArray());
                    asks.Add(ask);
                    if (!ask.Answered) Assert.True(table.QueueLength <= table.Config.Admission.QueueSize, "the queue grew past queue.size");
                    break;
                case ReleaseOp r when held.Count > 0:
                    var done = held[r.Index % held.Count];
                    held.Remove(done);
                    var outcome = Outcomes[r.Outcome];
                    table.Apply(new RequestOutcome(done.Answer.Backend!, outcome, outcome == Outcome.Response ? 200 : 0));
                    break;
                case ProbeOp p:
                    table.Apply(new ProbeResult(routes[Urls[p.Backend]], time.GetUtcNow(), p.Pass ? 200 : null, TimeSpan.Zero, p.Pass ? null : "refused"));
                    break;
                case ReloadOp c:
                    table.Reconcile(table.Config with
                    {
                        Admission = table.Config.Admission with { MaxInFlightPerBackend = c.Limit, QueueSize = c.QueueSize, QueueTimeout = TimeSpan.FromMilliseconds(c.TimeoutMs) },
                    });
                    break;
                case AbortOp x when asks.Any(k => !k.Answered):
                    var waiting = asks.Where(k => !k.Answered).ToArray();
                    var leaving = waiting[x.Index % waiting.Length];
                    leaving.Abort();
                    if (x.CancelNow) table.Apply(new PickCancelled(leaving.Waiter!));
                    else lateCancels.Add(leaving.Waiter!);
                    break;
                case DeliverCancelsOp:
                    foreach (var w in lateCancels) table.Apply(new PickCancelled(w)); // some were answered meanwhile: ignored
                    lateCancels.Clear();
                    break;
                case AdvanceOp t:
                    time.Advance(TimeSpan.FromMilliseconds(t.Ms));
                    table.Tick(); // the wake timer's message
                    break;
            }
            Check(table, time, asks, seen, held, before);
        }

        table.CloseQueue();
        Check(table, time, asks, seen, held, table.Entries.ToDictionary(e => e.Route.Url, e => e.InFlight));
        Assert.All(asks, a => Assert.True(a.Answered));
        foreach (var h in held) table.Apply(new RequestOutcome(h.Answer.Backend!, Outcome.Response, 200));
        Assert.All(table.Entries, e => Assert.Equal(0, e.InFlight));
    }

    static void Check(BackendTable table, FakeTimeProvider time, List<Ask> asks, HashSet<Ask> seen, List<Ask> held, Dictionary<string, int> before)
    {
        // Answers that came in this step: a backend is a slot this test must release once.
        for (var i = 0; i < asks.Count; i++)
        {
            var ask = asks[i];
            if (!ask.Answered || !seen.Add(ask)) continue;
            if (ask.Answer.Backend is not { } backend)
            {
                if (ask.Answer.Refused == Refusal.Cancelled) Assert.True(ask.Request.Aborted.IsCancellationRequested, "cancelled a client that is still there");
                continue;
            }
            held.Add(ask);
            Assert.DoesNotContain(ask.Request.Exclude ?? [], r => r.Key == backend.Key);
            // FIFO: every older pick still waiting had tried this backend (else it was its slot).
            foreach (var older in asks.Take(i).Where(o => !o.Answered))
                Assert.Contains(older.Request.Exclude ?? [], r => r.Key == backend.Key);
        }

        foreach (var e in table.Entries)
        {
            Assert.Equal(held.Count(h => h.Answer.Backend!.Key == e.Route.Key), e.InFlight); // slots handed out = in flight
            if (e.InFlight > before[e.Route.Url] && e.MaxInFlight > 0)
                Assert.True(e.InFlight <= e.MaxInFlight, $"{e.Route.Url}: {e.InFlight} in flight over its limit {e.MaxInFlight}");
        }

        var waiting = asks.Where(a => !a.Answered).ToArray();
        Assert.Equal(waiting.Length, table.QueueLength); // the unanswered ones are exactly the queue
        var now = time.GetUtcNow();
        foreach (var w in waiting)
        {
            Assert.True(w.Waiter!.Waiting);
            Assert.True(w.Waiter.Deadline > now, "a waiter outlived its deadline");
            if (w.Request.Aborted.IsCancellationRequested) continue; // leaves at its PickCancelled or the next hand-over
            Assert.DoesNotContain(table.Entries, e => e.Eligible && e.HasSlot && !(w.Request.Exclude ?? []).Any(r => r.Key == e.Route.Key));
        }
    }
}
