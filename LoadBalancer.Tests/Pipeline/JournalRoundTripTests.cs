using System.Text.Json;
using System.Threading.Channels;
using CsCheck;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Replay;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The journal's promise, as a property: whatever the state task is fed (probes, picks with and
// without excludes, picks that wait in the admission queue and are served, time out or are
// abandoned by their clients, outcomes of those picks, connection counts, reloads that add,
// remove, reweigh, change the policy, the pools, the limits, the queue, the retry budget or slow
// start, rejected reloads, probe plans, /status, /explain, drains from the operator, clock steps
// that end ejections and queue waits, the stop), the journal it writes, replayed on a fresh
// table, gives every recorded answer again, in order: zero divergences. And a journal with one
// answer altered is caught at exactly that message.
public sealed class JournalRoundTripTests
{
    static readonly string[] Urls = ["http://a:1", "http://b:2", "http://c:3", "http://d:4"];

    // One step of the state task's input: Op picks what, A/B/C its arguments.
    public readonly record struct Step(int Op, int A, int B, int C);

    static readonly Gen<Step> StepGen = Gen.Select(Gen.Int[0, 18], Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.Int[0, 1000])
        .Select((op, a, b, c) => new Step(op, a, b, c));

    [Fact]
    public void Replay_AnyRecordedRun_ZeroDivergences()
    {
        Gen.Select(Gen.Int, StepGen.Array[1, 300]).Sample((seed, steps) =>
        {
            var lines = Record(seed, steps);
            var (exit, stdout, stderr) = Replay(lines);
            var picks = lines.Count(l => l.StartsWith("{\"t\":\"pick\"", StringComparison.Ordinal));
            return exit == 0 && stdout.StartsWith($"{lines.Count} messages, {picks} picks, 0 divergences", StringComparison.Ordinal) && stderr.Length == 0;
        }, iter: 200);
    }

    // A rotated journal's file begins with a checkpoint and must replay alone: from any checkpoint
    // of any run (queued picks, ejections, slow start, retired routes, drains, discovery, the retry
    // budget's window, reseeded policies), the rest replays with zero divergences.
    [Fact]
    public void Replay_FromAnyCheckpoint_ZeroDivergences()
    {
        var checkpoints = 0;
        Gen.Select(Gen.Int, StepGen.Array[1, 300]).Sample((seed, steps) =>
        {
            var lines = Record(seed, steps);
            for (var i = 0; i < lines.Count; i++)
            {
                if (!lines[i].StartsWith("{\"t\":\"checkpoint\"", StringComparison.Ordinal)) continue;
                checkpoints++;
                var rest = lines.Skip(i).ToList();
                var (exit, stdout, stderr) = Replay(rest);
                var picks = rest.Count(l => l.StartsWith("{\"t\":\"pick\"", StringComparison.Ordinal));
                if (exit != 0 || !stdout.StartsWith($"{rest.Count} messages, {picks} picks, 0 divergences", StringComparison.Ordinal) || stderr.Length != 0)
                    throw new InvalidOperationException($"from message {i + 1}: exit {exit}: {stdout} {stderr}");
            }
            return true;
        }, iter: 200);
        Assert.True(checkpoints > 100, $"only {checkpoints} checkpoints");
    }

    [Fact]
    public void Replay_OneAnswerAltered_Exit1AtExactlyThatMessage()
    {
        Gen.Select(Gen.Int, StepGen.Array[20, 200], Gen.Int[0, 1000]).Sample((seed, steps, which) =>
        {
            var lines = Record(seed, steps);
            var answered = Enumerable.Range(0, lines.Count).Where(i => lines[i].StartsWith("{\"t\":\"answer\"", StringComparison.Ordinal)).ToList();
            if (answered.Count == 0) return true;
            var i = answered[which % answered.Count];
            var answer = (JournalEntry.Answered)JsonSerializer.Deserialize(lines[i], JournalJson.Default.JournalEntry)!;
            var altered = answer.Route is null ? answer with { Route = 1, Refusal = Refusal.None } : answer with { Route = null, Refusal = Refusal.NoBackend };
            lines[i] = JsonSerializer.Serialize<JournalEntry>(altered, JournalJson.Default.JournalEntry);

            var (exit, stdout, _) = Replay(lines);
            return exit == 1 && stdout.StartsWith($"divergence at message {i + 1} (answered): expected pick {answer.Pick}: ", StringComparison.Ordinal);
        }, iter: 100);
    }

    // The property above means something only if the generator reaches every kind of answer:
    // picks served from the queue, timed out, abandoned, refused by the budget, cut by the stop.
    [Fact]
    public void Generator_ReachesEveryKindOfAnswer()
    {
        var seen = new HashSet<string>();
        Gen.Select(Gen.Int, StepGen.Array[50, 300]).Sample((seed, steps) =>
        {
            var lines = Record(seed, steps);
            var entries = lines.Select(l => JsonSerializer.Deserialize(l, JournalJson.Default.JournalEntry)!).ToList();
            var picked = new HashSet<long>();
            foreach (var e in entries)
            {
                if (e is JournalEntry.Picked p) picked.Add(p.Pick);
                if (e is JournalEntry.Answered a)
                {
                    seen.Add(a.Refusal.ToString());
                    if (!picked.Contains(a.Pick)) seen.Add("unknown pick");
                }
                if (e is JournalEntry.Cancelled) seen.Add("cancel");
                seen.Add(e.GetType().Name);
            }
            // An answer right after something other than its own pick came from the queue.
            for (var i = 1; i < entries.Count; i++)
                if (entries[i] is JournalEntry.Answered { Route: not null } && entries[i - 1] is not JournalEntry.Picked) seen.Add("served from the queue");
        }, iter: 500); // 500: a rare kind (e.g. Stopping) was missed by 1 run in 10 at 100 iterations
        Assert.DoesNotContain("unknown pick", seen);
        foreach (var kind in new[] { "None", "NoBackend", "QueueFull", "QueueTimeout", "Cancelled", "Budget", "Stopping", "served from the queue", "cancel",
            nameof(JournalEntry.Drained), nameof(JournalEntry.Planned), nameof(JournalEntry.EjectionsDue), nameof(JournalEntry.ConnectionsMoved), nameof(JournalEntry.Reloaded),
            nameof(JournalEntry.Resolved), nameof(JournalEntry.DiscoveryPlanned), nameof(JournalEntry.Secret) })
            Assert.Contains(kind, seen);
    }

    [Fact]
    public void Replay_GapRecord_Exit3AtTheGap()
    {
        var lines = Record(1, [new Step(1, 0, 0, 0), new Step(1, 0, 0, 0), new Step(1, 0, 0, 0)]);
        lines.Insert(3, """{"t":"gap","dropped":5}""");
        var (exit, _, stderr) = Replay(lines);
        Assert.Equal(3, exit);
        Assert.StartsWith("gap at message 4: the journal writer fell behind and 5 records are missing here", stderr);
    }

    [Fact]
    public void Replay_NoStartRecord_Exit3()
    {
        var lines = Record(1, [new Step(1, 0, 0, 0)]);
        var (exit, _, stderr) = Replay(lines.Skip(1).ToList());
        Assert.Equal(3, exit);
        Assert.Contains("does not begin with the run's start record", stderr);
    }

    [Fact]
    public void Journal_FullChannel_TheBatchIsDroppedWholeAndTheNextBeginsWithItsGap()
    {
        var channel = Channel.CreateBounded<JournalBatch>(new BoundedChannelOptions(2) { FullMode = BoundedChannelFullMode.Wait });
        var time = new FakeTimeProvider();
        var clock = new StateClock(time);
        var journal = new Journal(channel.Writer, clock);
        journal.Start(1, TestConfigs.Create(Urls[0])); // batch 1: start
        journal.Record(new JournalEntry.StatusTaken());
        journal.Flush();                                // batch 2: status
        time.Advance(TimeSpan.FromSeconds(1));
        clock.Advance();
        journal.Record(new JournalEntry.StatusTaken());
        journal.Record(new JournalEntry.StatusTaken());
        journal.Flush();                                // full: clock + 2 statuses dropped
        Assert.Equal(3, journal.Dropped);
        journal.Answer(7, null, Refusal.NoBackend);
        journal.Flush();                                // still full: the answer and the reading said again before it dropped too
        Assert.Equal(5, journal.Dropped);
        while (channel.Reader.TryRead(out _)) { }
        journal.Record(new JournalEntry.Explained());
        journal.Flush();

        Assert.True(channel.Reader.TryRead(out var batch));
        Assert.Equal([new JournalEntry.Gap(5), new JournalEntry.Clock(clock.Now), new JournalEntry.Explained()],
            batch.Records.ToArray().Select(r => r.ToEntry())); // the reading is said again after a gap
        Assert.False(channel.Reader.TryRead(out _));
    }

    [Fact]
    public void Journal_BatchSizeReached_HandedOverWithoutWaitingForTheTurnsEnd()
    {
        var channel = Channel.CreateBounded<JournalBatch>(new BoundedChannelOptions(4) { FullMode = BoundedChannelFullMode.Wait });
        var journal = new Journal(channel.Writer, new StateClock(new FakeTimeProvider()));
        journal.Start(1, TestConfigs.Create(Urls[0]));
        Assert.True(channel.Reader.TryRead(out _));
        for (var i = 1; i < Journal.BatchSize; i++) journal.Answer(i, 1, Refusal.None);
        Assert.False(channel.Reader.TryRead(out _));
        journal.Answer(Journal.BatchSize, 1, Refusal.None);
        Assert.True(channel.Reader.TryRead(out var full));
        Assert.Equal(Journal.BatchSize, full.Count);
        Assert.Equal(0, journal.Dropped);
    }

    // The free list: a batch the writer has emptied is the one the state task fills next.
    [Fact]
    public void Journal_BatchBackOnTheFreeList_IsFilledAgain()
    {
        var channels = new PipelineChannels();
        var journal = new Journal(channels.Journal.Writer, new StateClock(new FakeTimeProvider()), channels.JournalFree.Reader);
        journal.Start(1, TestConfigs.Create(Urls[0]));
        Assert.True(channels.Journal.Reader.TryRead(out var first));
        journal.Record(new JournalEntry.StatusTaken()); // goes into a batch taken before first came back
        journal.Flush();
        Assert.True(channels.Journal.Reader.TryRead(out var second));
        Assert.NotSame(first, second);
        first.Clear();
        Assert.True(channels.JournalFree.Writer.TryWrite(first)); // as the writer does
        journal.Record(new JournalEntry.Explained());
        journal.Flush();
        journal.Record(new JournalEntry.Explained());
        journal.Flush();
        Assert.True(channels.Journal.Reader.TryRead(out var third)); // filled before first came back
        Assert.NotSame(first, third);
        Assert.True(channels.Journal.Reader.TryRead(out var fourth));
        Assert.Same(first, fourth);
        Assert.Equal([new JournalEntry.Explained()], fourth.Records.ToArray().Select(r => r.ToEntry()));
    }

    // The loop hands a small batch over only when HandOverEvery has passed; if no message comes,
    // its own timer brings it round for that, so a quiet balancer's last records still reach the file.
    [Fact]
    public async Task Loop_OnePickThenNothing_ItsRecordsAreHandedOverWhenHandOverEveryPasses()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        var clock = new StateClock(time);
        var channels = new PipelineChannels();
        var journal = new Journal(channels.Journal.Writer, clock);
        var config = TestConfigs.Create(Urls[0]);
        var routes = new RouteFactory();
        var table = new BackendTable(config, (b, _) => routes.Create(b), clock, _ => { }, random: new Random(1));
        journal.Start(1, config);
        Assert.True(channels.Journal.Reader.TryRead(out _)); // the start
        var state = new BackendState(channels, table, time, NullLogger<BackendState>.Instance, clock, journal);
        await state.StartAsync(CancellationToken.None);
        try
        {
            var pick = await new StateClient(channels).PickAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.NotNull(pick.Backend);
            Assert.False(channels.Journal.Reader.TryRead(out _)); // two records: they wait for more

            time.Advance(Journal.HandOverEvery);
            var batch = await channels.Journal.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(["pick", "answer"], batch.Records.ToArray().Select(r => r.ToEntry()).Where(e => e is not JournalEntry.Clock)
                .Select(e => e is JournalEntry.Picked ? "pick" : e is JournalEntry.Answered ? "answer" : e.GetType().Name));
        }
        finally
        {
            await state.StopAsync(CancellationToken.None);
        }
    }

    // Runs the steps through the state task's own handlers (BackendState.Handle/EndBatch, as its
    // loop calls them) with the journal on, and returns the journal as the writer writes it.
    static List<string> Record(int seed, Step[] steps)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
        var clock = new StateClock(time);
        var channels = new PipelineChannels();
        var journal = new Journal(channels.Journal.Writer, clock);
        var routes = new RouteFactory();
        var config = Config(0, 0, 0);
        var table = new BackendTable(config, (b, _) => routes.Create(b), clock, _ => { }, random: new Random(seed), drawSecret: journal.DrawSecret);
        journal.Start(seed, config);
        var state = new BackendState(channels, table, time, NullLogger<BackendState>.Instance, clock, journal);
        var inFlight = new List<BackendRoute>();
        var queued = new List<(Reply<Pick> Reply, ValueTask<Pick> Answer, CancellationTokenSource Abort)>();

        // Answers that came from the queue (a freed slot, a timeout, a cancel): their slots are in flight too.
        void Collect()
        {
            foreach (var q in queued.Where(q => q.Answer.IsCompleted).ToList())
            {
                queued.Remove(q);
                if (q.Answer.Result.Backend is { } granted) inFlight.Add(granted);
            }
        }

        BackendRoute? Route(int n) => table.Entries.Count == 0 ? null : table.Entries[n % table.Entries.Count].Route;

        foreach (var s in steps)
        {
            switch (s.Op)
            {
                case 0: // a new batch: the clock moves (0 to 40 s), the batch before it ends
                    state.EndBatch();
                    time.Advance(TimeSpan.FromMilliseconds(s.A * 40));
                    clock.Advance();
                    break;
                case 1 or 2: // a pick, sometimes a retry that excludes a route; it may wait in the queue
                    var reply = Reply<Pick>.Rent();
                    var answer = reply.Task;
                    var abort = new CancellationTokenSource();
                    state.Handle(new PickRequest(s.B % 3 == 0 && Route(s.C) is { } tried ? [tried] : null, reply, abort.Token, Key(s)));
                    if (!answer.IsCompleted) queued.Add((reply, answer, abort));
                    else if (answer.Result.Backend is { } picked) inFlight.Add(picked);
                    break;
                case 3 or 4: // an outcome for a pick in flight
                    if (inFlight.Count == 0) break;
                    var route = inFlight[s.A % inFlight.Count];
                    inFlight.Remove(route);
                    var kind = (Outcome)(s.B % Enum.GetValues<Outcome>().Length);
                    state.Handle(new RequestOutcome(route, kind, kind == Outcome.BadGatewayStatus ? 503 : kind.HasResponse() ? 200 : 0));
                    break;
                case 5 or 6: // a probe result
                    if (Route(s.A) is not { } probed) break;
                    var pass = s.B % 2 == 0;
                    state.Handle(new ProbeResult(probed, clock.Now, pass ? 200 : s.C % 2 == 0 ? 500 : null, TimeSpan.FromMilliseconds(s.C / 7.0), pass || s.C % 2 == 0 ? null : "connection refused"));
                    break;
                case 7: // pooled connections opened or closed
                    if (Route(s.A) is not { } pooled) break;
                    if (pooled.Connections.Add(s.B % 3 - 1)) state.Handle(new ConnectionsChanged(pooled));
                    break;
                case 8: // a reload
                    state.Handle(new ConfigChanged(Config(s.A, s.B, s.C)));
                    break;
                case 9: // a rejected reload, a probe plan
                    if (s.A % 2 == 0) state.Handle(new ConfigRejected($"lb.json: retries: bad {s.B}"));
                    else state.Handle(new ProbePlanRequest(new TaskCompletionSource<ProbePlan>()));
                    break;
                case 10: // /status, /explain
                    if (s.A % 2 == 0) state.Handle(new StatusRequest(new TaskCompletionSource<StatusSnapshot>()));
                    else state.Handle(new ExplainRequest(new TaskCompletionSource<Explanation>()));
                    break;
                case 11 or 12: // the operator drains or undrains (a known backend, an unknown one, or a refused caller)
                    var url = s.A % 5 == 4 ? "http://nobody:9" : Urls[s.A % Urls.Length];
                    state.Handle(new DrainRequest(url, s.B % 2 == 0, null, Loopback: s.C % 7 != 0, new TaskCompletionSource<DrainAnswer>()));
                    break;
                case 13: // /events: read only
                    state.Handle(new EventsRequest(s.A, new TaskCompletionSource<EventsPage>()));
                    break;
                case 14: // a waiting pick's client leaves: its abort, then the PickCancelled the state task's watch wrote
                    if (queued.Count == 0) break;
                    queued[s.A % queued.Count].Abort.Cancel();
                    while (channels.Events.Reader.TryRead(out var cancelled)) state.Handle(cancelled);
                    break;
                case 15: // an abort the loop only sees when it next walks the queue (no PickCancelled read yet)
                    if (queued.Count > 0) queued[s.A % queued.Count].Abort.Cancel();
                    break;
                case 16: // DNS discovery: the resolver's answer for the discovered host (addresses, none, or a failure)
                    string[]? addresses = s.B % 5 == 4 ? null : Enumerable.Range(0, s.B % 4).Select(k => $"10.0.0.{(s.C + k) % 5 + 1}:80").ToArray();
                    state.Handle(new MembershipChanged(Discovered.Key, addresses, addresses is null ? "SERVFAIL" : null));
                    break;
                case 17: // the resolver asks what to look up
                    state.Handle(new DiscoveryPlanRequest(new TaskCompletionSource<DiscoveryPlan>()));
                    break;
                case 18: // the writer's file is full: it asks for a checkpoint (the state task reseeds)
                    state.Handle(CheckpointWanted.Instance);
                    break;
            }
            Collect();
            AffinityTokens.Clear();
            AffinityTokens.AddRange(table.Entries.Select(e => e.AffinityToken).OfType<string>());
        }
        state.EndBatch();
        state.Close();
        Collect();
        Assert.Empty(queued); // every pick was answered exactly once
        journal.Complete();
        var lines = new List<string>(); // as the JournalWriter writes them
        while (channels.Journal.Reader.TryRead(out var batch))
            foreach (var record in batch.Records) lines.Add(JournalLines.Line(record));
        Assert.Equal(0, journal.Dropped);
        return lines;
    }

    // A configuration from three numbers: which backends (at least one), their weights, the
    // policy, thresholds, the ejection time, and a pool setting (a change replaces every route).
    static LbConfig Config(int a, int b, int c)
    {
        var backends = Urls.Where((_, i) => (a >> i & 1) == 0 || i == a % Urls.Length)
            .Select((u, i) => TestConfigs.Backend(u, 1 + (b >> i) % 3) with { MaxInFlight = (c >> i) % 4 == 3 ? 1 : null }).ToArray();
        var config = TestConfigs.Create(a % 5 == 0 ? [.. backends, Discovered] : backends);
        return config with
        {
            Balancing = BalancingNames.All[c % BalancingNames.All.Length],
            HealthCheck = config.HealthCheck with { HealthyThreshold = 1 + b % 3, UnhealthyThreshold = 1 + c % 3 },
            PassiveHealth = new PassiveHealthConfig(1 + a % 3, TimeSpan.FromSeconds(5 + c % 30)) { MaxEjectionPercent = 25 + b % 4 * 25 },
            Pool = config.Pool with { ConnectTimeout = TimeSpan.FromSeconds(1 + c / 500) },
            Retries = b % 4,
            // Affinity with and without a secret (a drawn one is journaled), hashing's spill factor.
            Affinity = (a / 3 % 3) switch { 0 => null, 1 => new AffinityConfig("lb", null, null), _ => new AffinityConfig("lb", "s3cret", null) },
            HashBalanceFactor = b % 3 == 0 ? 0 : 1.25,
            // Admission: tight limits so picks queue; a short queue and timeout; a stingy retry budget; slow start.
            Admission = new AdmissionConfig(MaxInFlightPerBackend: a % 3, QueueSize: b % 4, QueueTimeout: TimeSpan.FromSeconds(1 + c % 5),
                RetryBudgetPercent: b % 50, RetryBudgetMinPerSecond: a % 2, SlowStart: TimeSpan.FromSeconds(c % 3 * 10)),
        };
    }

    static readonly BackendConfig Discovered = TestConfigs.Backend("http://disc.test:80") with { Discover = true };

    // A request's hash key and affinity cookie: none, a key from a small set (so keys repeat),
    // a cookie that names a backend (a token the table made), or a forged one.
    static RequestKey Key(Step s) => (s.C % 4) switch
    {
        0 => default,
        1 => new RequestKey((ulong)(s.A % 7) * 0x9E3779B97F4A7C15UL, null),
        2 => new RequestKey(null, "forged-cookie"),
        _ => new RequestKey((ulong)s.A, AffinityTokens.ElementAtOrDefault(s.B % 5)),
    };

    // The tokens the table gave its backends (read in Record, per run).
    [ThreadStatic] static List<string>? t_tokens;
    static List<string> AffinityTokens => t_tokens ??= [];

    static (int Exit, string Stdout, string Stderr) Replay(List<string> lines)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var exit = ReplayCommand.Run(lines, "test", until: null, printStatus: false, stdout, stderr).GetAwaiter().GetResult();
        return (exit, stdout.ToString(), stderr.ToString());
    }
}
