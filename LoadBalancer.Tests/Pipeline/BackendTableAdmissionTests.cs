using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The admission rules, called directly as the state task would, on a fake clock: limits, the
// FIFO deadline queue, client aborts, the retry budget's window, slow start per policy and
// maxEjectionPercent. The random interleavings are BackendTableAdmissionPropertyTests'.
public sealed class BackendTableAdmissionTests : IDisposable
{
    const string A = "http://a:1", B = "http://b:2", C = "http://c:3";

    readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
    readonly RouteFactory _routes = new();
    readonly LogSink _logs = new();
    readonly ILoggerFactory _loggerFactory;

    public BackendTableAdmissionTests() =>
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Information));

    public void Dispose() => _loggerFactory.Dispose();

    static LbConfig Config(int limit, params string[] urls)
    {
        var config = TestConfigs.Create(urls);
        return config with { Admission = config.Admission with { MaxInFlightPerBackend = limit } };
    }

    BackendTable Table(LbConfig config, Random? random = null) =>
        new(config, _routes.Create, _time, _ => { }, random: random, log: _loggerFactory.CreateLogger("table"));

    static BackendEntry Entry(BackendTable table, string url) => table.Entries.Single(e => e.Route.Url == url);

    static void Release(BackendTable table, Ask ask, Outcome outcome = Outcome.Response) =>
        table.Apply(new RequestOutcome(ask.Answer.Backend!, outcome, outcome == Outcome.Response ? 200 : 0));

    void Probe(BackendTable table, string url, bool pass) =>
        table.Apply(new ProbeResult(_routes[url], _time.GetUtcNow(), pass ? 200 : null, TimeSpan.Zero, pass ? null : "connection refused"));

    // ---- limits and the queue -------------------------------------------------------------

    [Fact]
    public void Pick_EveryBackendAtItsLimit_WaitsAndTakesTheFirstFreedSlotInTheSameCall()
    {
        var table = Table(Config(2, A, B));
        var running = Enumerable.Range(0, 4).Select(_ => Ask.Send(table)).ToArray();
        Assert.All(running, a => Assert.NotNull(a.Answer.Backend));
        Assert.All(table.Entries, e => Assert.Equal(2, e.InFlight));

        var waiting = Ask.Send(table);
        Assert.False(waiting.Answered);
        Assert.NotNull(waiting.Waiter);
        Assert.Equal(1, table.QueueLength);

        _time.Advance(TimeSpan.FromMilliseconds(40));
        Release(table, running[1]); // B's slot frees
        Assert.Equal(B, waiting.Backend);
        Assert.Equal(TimeSpan.FromMilliseconds(40), waiting.Answer.Waited);
        Assert.Equal(0, table.QueueLength);
        Assert.Equal(2, Entry(table, B).InFlight); // handed over, never over the limit
    }

    [Fact]
    public void Pick_PerBackendMaxInFlight_OverridesTheGlobalLimit()
    {
        var config = Config(1, A, B);
        config = config with { Backends = [config.Backends[0] with { MaxInFlight = 3 }, config.Backends[1]] };
        var table = Table(config);

        var picks = Enumerable.Range(0, 5).Select(_ => Ask.Send(table)).ToArray();

        Assert.Equal(3, Entry(table, A).InFlight);
        Assert.Equal(1, Entry(table, B).InFlight);
        Assert.False(picks[4].Answered);
        Assert.Equal([3, 1], table.Snapshot().Backends.Select(b => b.MaxInFlight));
    }

    [Fact]
    public void Apply_SlotsFreeOneByOne_WaitersAreServedOldestFirst()
    {
        var table = Table(Config(1, A));
        var holder = Ask.Send(table);
        var waiters = Enumerable.Range(0, 3).Select(_ => Ask.Send(table)).ToArray();

        Release(table, holder);
        Assert.Equal([true, false, false], waiters.Select(w => w.Answered));
        Release(table, waiters[0]);
        Assert.Equal([true, true, false], waiters.Select(w => w.Answered));
        Release(table, waiters[1]);
        Assert.True(waiters[2].Answered);
        Assert.Equal(1, Entry(table, A).InFlight);
    }

    [Fact]
    public void Pick_QueueHoldsQueueSize_OneMoreIsRefusedAtOnce()
    {
        var config = Config(1, A);
        var table = Table(config with { Admission = config.Admission with { QueueSize = 2 } });
        Ask.Send(table);
        var queued = new[] { Ask.Send(table), Ask.Send(table) };

        var refused = Ask.Send(table);

        Assert.Equal(Refusal.QueueFull, refused.Answer.Refused);
        Assert.Null(refused.Answer.Backend);
        Assert.All(queued, q => Assert.False(q.Answered));
        Assert.Equal(2, table.QueueLength);
    }

    [Fact]
    public void Tick_QueueTimeoutPassed_AnswersQueueTimeoutOnTheDot()
    {
        var table = Table(Config(1, A)); // queue.timeout 5s
        Ask.Send(table);
        var waiter = Ask.Send(table);
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(5), table.NextDeadline);

        _time.Advance(TimeSpan.FromMilliseconds(4999));
        table.Tick();
        Assert.False(waiter.Answered);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        table.Tick();
        Assert.Equal(Refusal.QueueTimeout, waiter.Answer.Refused);
        Assert.Equal(TimeSpan.FromSeconds(5), waiter.Answer.Waited);
        Assert.Equal(DateTimeOffset.MaxValue, table.NextDeadline);
        Assert.Equal(1, Entry(table, A).InFlight); // the waiter took nothing
    }

    [Fact]
    public void Apply_SlotFreesAfterTheDeadlineButBeforeTheTimerFired_WaiterHasTimedOut()
    {
        var table = Table(Config(1, A));
        var holder = Ask.Send(table);
        var waiter = Ask.Send(table);

        _time.Advance(TimeSpan.FromSeconds(6)); // the timer's wake is still on its way
        Release(table, holder);

        Assert.Equal(Refusal.QueueTimeout, waiter.Answer.Refused);
        Assert.Equal(0, Entry(table, A).InFlight);
    }

    [Fact]
    public void Apply_PickCancelled_LeavesWithoutASlotAndTheNextWaiterGetsIt()
    {
        var table = Table(Config(1, A));
        var holder = Ask.Send(table);
        var (gone, next) = (Ask.Send(table), Ask.Send(table));

        gone.Abort();
        table.Apply(new PickCancelled(gone.Waiter!));
        Assert.Equal(Refusal.Cancelled, gone.Answer.Refused);
        Assert.Equal(1, table.QueueLength);

        Release(table, holder);
        Assert.Equal(A, next.Backend);
        Assert.Equal(1, Entry(table, A).InFlight);
    }

    [Fact]
    public void Apply_PickCancelledAfterTheWaiterGotItsSlot_IsIgnoredAndTheSlotIsReleasedOnceByItsOutcome()
    {
        var table = Table(Config(1, A));
        var holder = Ask.Send(table);
        var waiter = Ask.Send(table);
        Release(table, holder);            // the slot goes to the waiter...
        waiter.Abort();
        table.Apply(new PickCancelled(waiter.Waiter!)); // ...and the abort's message comes late

        Assert.Equal(A, waiter.Backend);
        Assert.Equal(1, Entry(table, A).InFlight);
        Release(table, waiter, Outcome.ClientAbort); // its handler saw the abort and reports it
        Assert.Equal(0, Entry(table, A).InFlight);
    }

    [Fact]
    public void Apply_SlotFreesWhileTheOldestWaitersClientHasLeft_NextWaiterGetsIt()
    {
        var table = Table(Config(1, A));
        var holder = Ask.Send(table);
        var (gone, next) = (Ask.Send(table), Ask.Send(table));
        gone.Abort(); // its PickCancelled has not arrived yet

        Release(table, holder);

        Assert.Equal(Refusal.Cancelled, gone.Answer.Refused);
        Assert.Equal(A, next.Backend);
    }

    [Fact]
    public void Apply_LastBackendGoesDownWhileOthersWait_WaitersGetNoBackendAtOnce()
    {
        var config = Config(1, A);
        var table = Table(config with { HealthCheck = config.HealthCheck with { UnhealthyThreshold = 1 } });
        Ask.Send(table);
        var waiter = Ask.Send(table);

        Probe(table, A, pass: false);

        Assert.Equal(Refusal.NoBackend, waiter.Answer.Refused);
    }

    [Fact]
    public void Apply_FreedSlotOnABackendTheOldestWaiterTried_GoesToTheNextWaiter()
    {
        var table = Table(Config(1, A, B));
        var (onA, onB) = (Ask.Send(table), Ask.Send(table));
        Assert.Equal(A, onA.Backend);
        var retry = Ask.Send(table, [_routes[A]]); // a retry that tried A waits for B
        var first = Ask.Send(table);

        Release(table, onA);

        Assert.False(retry.Answered);
        Assert.Equal(A, first.Backend);
        Release(table, onB);
        Assert.Equal(B, retry.Backend);
    }

    [Fact]
    public void Reconcile_RaisedLimit_ServesWaitersAtOnce()
    {
        var config = Config(1, A);
        var table = Table(config);
        Ask.Send(table);
        var waiters = new[] { Ask.Send(table), Ask.Send(table) };

        table.Reconcile(config with { Admission = config.Admission with { MaxInFlightPerBackend = 3 } });

        Assert.All(waiters, w => Assert.Equal(A, w.Backend));
        Assert.Equal(3, Entry(table, A).InFlight);
    }

    [Fact]
    public void Reconcile_ShorterQueueTimeout_AppliesToWaitersAlreadyQueued()
    {
        var config = Config(1, A);
        var table = Table(config);
        Ask.Send(table);
        var waiter = Ask.Send(table);
        _time.Advance(TimeSpan.FromSeconds(1));

        table.Reconcile(config with { Admission = config.Admission with { QueueTimeout = TimeSpan.FromSeconds(2) } });
        Assert.Equal(_time.GetUtcNow() + TimeSpan.FromSeconds(1), table.NextDeadline);
        _time.Advance(TimeSpan.FromSeconds(1));
        table.Tick();

        Assert.Equal(Refusal.QueueTimeout, waiter.Answer.Refused);
    }

    [Fact]
    public void CloseQueue_AtStop_AnswersEveryWaiterStopping()
    {
        var table = Table(Config(1, A));
        Ask.Send(table);
        var waiters = new[] { Ask.Send(table), Ask.Send(table) };

        table.CloseQueue();

        Assert.All(waiters, w => Assert.Equal(Refusal.Stopping, w.Answer.Refused));
        Assert.Equal(0, table.QueueLength);
    }

    [Fact]
    public void Snapshot_WithWaiters_ShowsQueueLength()
    {
        var table = Table(Config(1, A));
        Ask.Send(table);
        Ask.Send(table);
        Ask.Send(table);

        Assert.Equal(2, table.Snapshot().QueueLength);
    }

    // ---- the retry budget -----------------------------------------------------------------

    static LbConfig Budget(int percent, int minPerSecond, params string[] urls)
    {
        var config = TestConfigs.Create(urls);
        return config with { Admission = config.Admission with { RetryBudgetPercent = percent, RetryBudgetMinPerSecond = minPerSecond } };
    }

    [Fact]
    public void Pick_RetriesOverMinPerSecondTimesTen_RefusedUntilTheFirstGrantLeavesTheWindow()
    {
        var table = Table(Budget(0, 1, A, B));
        var tried = new[] { _routes[A] };
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(B, Ask.Send(table, tried).Backend);
            _time.Advance(TimeSpan.FromMilliseconds(100));
        }
        // t0 + 1 s: ten granted in the window, the eleventh is refused until t0 + 10 s exactly.
        Assert.Equal(Refusal.Budget, Ask.Send(table, tried).Answer.Refused);
        _time.Advance(TimeSpan.FromSeconds(10) - TimeSpan.FromSeconds(1) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(Refusal.Budget, Ask.Send(table, tried).Answer.Refused); // t0 + 9.999 s
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(B, Ask.Send(table, tried).Backend);                       // t0 + 10 s: the first grant left
        Assert.Equal(Refusal.Budget, Ask.Send(table, tried).Answer.Refused);
    }

    [Fact]
    public void Pick_PercentOfFirstAttempts_GrantsThatManyRetriesInTheWindow()
    {
        var table = Table(Budget(20, 0, A, B));
        for (var i = 0; i < 100; i++) table.Apply(new RequestOutcome(Ask.Send(table).Answer.Backend!, Outcome.Response, 200));
        var tried = new[] { _routes[A] };

        var granted = Enumerable.Range(0, 25).Count(_ => Ask.Send(table, tried).Answer.Backend is not null);

        Assert.Equal(20, granted);
        _time.Advance(RetryBudget.Window); // the first attempts have left the window: only minPerSecond (0)
        Assert.Equal(Refusal.Budget, Ask.Send(table, tried).Answer.Refused);
    }

    [Fact]
    public void Pick_RetryWithNoBackendLeftToTry_UsesNoBudget()
    {
        var table = Table(Budget(0, 1, A));
        for (var i = 0; i < 20; i++) Assert.Equal(Refusal.NoBackend, Ask.Send(table, [_routes[A]]).Answer.Refused);
        Assert.Equal(0, table.RetryBudget.Granted);
    }

    [Fact]
    public void Pick_RefusedRetries_LoggedAtMostOncePerSecond()
    {
        var table = Table(Budget(0, 0, A, B));
        var tried = new[] { _routes[A] };
        for (var i = 0; i < 50; i++)
        {
            Ask.Send(table, tried);
            _time.Advance(TimeSpan.FromMilliseconds(50)); // 2.5 s of refusals
        }
        Assert.Equal(3, _logs.Lines.Count(l => l.Message.StartsWith("Retry budget spent", StringComparison.Ordinal)));
    }

    // ---- slow start -----------------------------------------------------------------------

    static LbConfig Slow(string policy, TimeSpan ramp, params BackendConfig[] backends)
    {
        var config = TestConfigs.Create(backends) with { Balancing = policy };
        return config with
        {
            Admission = config.Admission with { SlowStart = ramp },
            HealthCheck = config.HealthCheck with { HealthyThreshold = 1, UnhealthyThreshold = 1 },
        };
    }

    [Theory]
    [InlineData(0, 100)]
    [InlineData(5, 550)]
    [InlineData(10, 1000)]
    [InlineData(11, 1000)]
    public void Weight_Ramp_RisesLinearlyFromTenPercent(int seconds, long thousandths)
    {
        var since = DateTimeOffset.UnixEpoch;
        Assert.Equal(thousandths, SlowStart.Weight(1, since, since.AddSeconds(seconds), TimeSpan.FromSeconds(10)));
    }

    BackendTable Recovered(string policy, Random? random = null, int weightB = 1)
    {
        var table = Table(Slow(policy, TimeSpan.FromSeconds(10), TestConfigs.Backend(A), TestConfigs.Backend(B, weightB)), random);
        Probe(table, B, pass: false);
        Probe(table, B, pass: true); // b is back: it warms up
        return table;
    }

    [Fact]
    public void Pick_RoundRobinWhileWarming_ShareFollowsTheRamp()
    {
        var table = Recovered(BalancingNames.RoundRobin);
        Assert.NotNull(Entry(table, B).WarmingSince);
        Assert.Equal(0.1, table.Snapshot().Backends[1].EffectiveWeight);
        Assert.Equal("healthy", table.Snapshot().Backends[1].State.Label()); // warming shows as healthy

        Assert.Equal(10, PicksOf(table, B, 110)); // 0.1 / 1.1 of the picks
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0.55, table.Snapshot().Backends[1].EffectiveWeight);
        Assert.InRange(PicksOf(table, B, 155), 54, 56); // 0.55 / 1.55
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(50, PicksOf(table, B, 100));
        Assert.Null(Entry(table, B).WarmingSince);
    }

    [Fact]
    public void Pick_RoundRobinNobodyWarming_KeepsNginxOrder()
    {
        var config = Slow(BalancingNames.RoundRobin, TimeSpan.FromSeconds(10), TestConfigs.Backend(A, 5), TestConfigs.Backend(B), TestConfigs.Backend(C));
        var table = Table(config);

        var order = string.Join(" ", Enumerable.Range(0, 7).Select(_ =>
        {
            var pick = table.Choose(null).Backend!;
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
            return pick.Url[7..8];
        }));

        Assert.Equal("a a b a c a a", order);
    }

    [Theory]
    [InlineData(BalancingNames.LeastConnections)]
    [InlineData(BalancingNames.PowerOfTwo)]
    public void Pick_InFlightPolicyWhileWarming_ComparesInFlightOverEffectiveWeight(string policy)
    {
        var table = Recovered(policy, new Random(1));
        Entry(table, A).InFlight = 2;  // load 2 / 1
        Entry(table, B).InFlight = 1;  // load 1 / 0.1 = 10 while warming

        Assert.Equal(A, table.Choose(null).Backend!.Url);
        Entry(table, A).InFlight = 2;
        _time.Advance(TimeSpan.FromSeconds(10)); // warm: 1 / 1 < 2 / 1
        Assert.Equal(B, table.Choose(null).Backend!.Url);
    }

    [Fact]
    public void Pick_RandomWhileWarming_ChosenByEffectiveWeight()
    {
        var table = Recovered(BalancingNames.Random, new Random(7));
        Assert.InRange(PicksOf(table, B, 11_000), 800, 1200); // 0.1 / 1.1 of 11 000 = 1000
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.InRange(PicksOf(table, B, 10_000), 4800, 5200);
    }

    [Fact]
    public void Constructor_AtStartup_NoBackendWarms()
    {
        var table = Table(Slow(BalancingNames.RoundRobin, TimeSpan.FromSeconds(10), TestConfigs.Backend(A), TestConfigs.Backend(B)));
        Assert.All(table.Entries, e => Assert.Null(e.WarmingSince));
        Assert.Equal([1.0, 1.0], table.Snapshot().Backends.Select(b => b.EffectiveWeight));
    }

    [Fact]
    public void Apply_OnlyEligibleBackendComesBack_TakesFullWeight()
    {
        var table = Table(Slow(BalancingNames.RoundRobin, TimeSpan.FromSeconds(10), TestConfigs.Backend(A)));
        Probe(table, A, pass: false);
        Probe(table, A, pass: true);
        Assert.Null(Entry(table, A).WarmingSince);
        Assert.DoesNotContain(_logs.Lines, l => l.Message.Contains("warms up", StringComparison.Ordinal));
    }

    [Fact]
    public void Reconcile_AddedBackend_Warms()
    {
        var config = Slow(BalancingNames.RoundRobin, TimeSpan.FromSeconds(10), TestConfigs.Backend(A));
        var table = Table(config);
        table.Reconcile(config with { Backends = [.. config.Backends, TestConfigs.Backend(B)] });
        Assert.NotNull(Entry(table, B).WarmingSince);
        Assert.Contains(_logs.Lines, l => l.Message == $"Backend {B} warms up: its effective weight rises from 10% to 100% over 10s (slowStart)");
    }

    [Fact]
    public void Tick_EjectionEnded_Warms()
    {
        var config = Slow(BalancingNames.RoundRobin, TimeSpan.FromSeconds(10), TestConfigs.Backend(A), TestConfigs.Backend(B));
        var table = Table(config with { PassiveHealth = config.PassiveHealth with { ConsecutiveFailures = 1 } });
        table.Apply(new RequestOutcome(table.Choose([_routes[B]]).Backend!, Outcome.ConnectRefused, 0));
        Assert.Equal(BackendHealth.Ejected, Entry(table, A).State);

        _time.Advance(TimeSpan.FromSeconds(30));
        table.Tick();

        Assert.NotNull(Entry(table, A).WarmingSince);
        Assert.Equal(0.1, table.Snapshot().Backends[0].EffectiveWeight);
    }

    int PicksOf(BackendTable table, string url, int n)
    {
        var count = 0;
        for (var i = 0; i < n; i++)
        {
            var pick = table.Choose(null).Backend!;
            table.Apply(new RequestOutcome(pick, Outcome.Response, 200));
            if (pick.Url == url) count++;
        }
        return count;
    }

    // ---- maxEjectionPercent ---------------------------------------------------------------

    BackendTable Ejecting(int percent, params string[] urls)
    {
        var config = TestConfigs.Create(urls);
        return Table(config with { PassiveHealth = config.PassiveHealth with { ConsecutiveFailures = 1, MaxEjectionPercent = percent } });
    }

    void Fail(BackendTable table, string url) =>
        table.Apply(new RequestOutcome(table.Choose(table.Entries.Select(e => e.Route).Where(r => r.Url != url).ToArray()).Backend!,
            Outcome.ConnectRefused, 0));

    [Fact]
    public void Apply_SecondOfTwoWouldBeEjected_StaysInLoggedOnceUntilTheFirstReturns()
    {
        var table = Ejecting(50, A, B);
        Fail(table, A);
        Assert.Equal(BackendHealth.Ejected, Entry(table, A).State);

        Fail(table, B);
        Fail(table, B);
        Assert.True(Entry(table, B).Eligible);
        Assert.Single(_logs.Lines, l => l.Message == $"Backend {B} not ejected after 1 failed requests: 1 of 2 backends are ejected already (passiveHealth.maxEjectionPercent 50); it stays in");

        _time.Advance(TimeSpan.FromSeconds(30));
        table.Tick();
        Fail(table, B);
        Assert.Equal(BackendHealth.Ejected, Entry(table, B).State);
    }

    [Fact]
    public void Apply_OnlyBackendFails_CanAlwaysBeEjected()
    {
        var table = Ejecting(0, A);
        Fail(table, A);
        Assert.Equal(BackendHealth.Ejected, Entry(table, A).State);
    }

    [Fact]
    public void Apply_FourBackendsAtFiftyPercent_AtMostTwoEjected()
    {
        var table = Ejecting(50, A, B, C, "http://d:4");
        foreach (var url in table.Entries.Select(e => e.Route.Url).ToArray()) Fail(table, url);
        Assert.Equal(2, table.Entries.Count(e => e.State == BackendHealth.Ejected));
    }
}
