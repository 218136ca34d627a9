using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Replay;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The writer's rotation as an operator meets it: the state task and the writer, a small
// journal.maxSizeMB, enough traffic to fill the file many times; then each file on its own
// replays with zero divergences (PATH begins with a checkpoint the state task made on the
// writer's asking), and nothing is lost or written twice between the two files. The test plays
// the state loop (BackendState's handlers, as its loop calls them) and waits for the writer to
// give each batch back (journalfree), so the writer never lags behind: the rotation is tested,
// not the machine's load.
public sealed class JournalWriterTests
{
    [Fact]
    public async Task Rotation_SmallCap_EachFileAloneReplaysWithZeroDivergences()
    {
        var dir = Directory.CreateTempSubdirectory("lb-journal-");
        try
        {
            var path = Path.Combine(dir.FullName, "state.journal");
            var config = TestConfigs.Create("http://a:1", "http://b:2", "http://c:3") with
            {
                Balancing = BalancingNames.PowerOfTwo,
                Admission = TestConfigs.Create("http://a:1").Admission with { MaxInFlightPerBackend = 2, QueueSize = 10, QueueTimeout = TimeSpan.FromSeconds(1) },
                Journal = new JournalConfig(path, 64 * 1024), // as Program makes it: the writer's settings are the table's (a checkpoint with others is a reload's)
            };
            var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
            var channels = new PipelineChannels();
            var clock = new StateClock(time);
            var journal = new Journal(channels.Journal.Writer, clock);
            var writer = new JournalWriter(channels.Journal.Reader, config.Journal, NullLogger<JournalWriter>.Instance,
                channels.Events.Writer, channels.JournalFree.Writer, channels.Events.Reader.Completion);
            var routes = new RouteFactory();
            var table = new BackendTable(config, (b, _) => routes.Create(b), clock, _ => { }, random: new Random(7));
            journal.Start(7, config);
            var state = new BackendState(channels, table, time, NullLogger<BackendState>.Instance, clock, journal);
            await writer.StartAsync(CancellationToken.None);
            await channels.JournalFree.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5)); // the start, written

            var inFlight = new Queue<ValueTask<Pick>>();
            for (var i = 0; i < 3000; i++) // about 600 KB of records: the 64 KiB file fills over and over
            {
                var reply = Reply<Pick>.Rent();
                inFlight.Enqueue(reply.Task);
                state.Handle(new PickRequest(null, reply));
                if (inFlight.Count > 5 && inFlight.Peek().IsCompleted) // some wait in the queue for a slot; some fail
                {
                    var pick = await inFlight.Dequeue();
                    if (pick.Backend is { } backend)
                        state.Handle(new RequestOutcome(backend, i % 7 == 0 ? Outcome.ConnectRefused : Outcome.Response, i % 7 == 0 ? 0 : 200));
                }
                if (i % 10 == 0) time.Advance(TimeSpan.FromMilliseconds(150));
                clock.Advance();
                state.EndBatch();
                journal.Flush();
                await channels.JournalFree.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                while (channels.Events.Reader.TryRead(out var asked)) state.Handle(asked); // the writer's CheckpointWanted, as the loop takes it
            }
            state.Close();
            journal.Complete();
            await writer.StopAsync(CancellationToken.None);

            Assert.True(File.Exists(path + ".1"), "the journal never rotated");
            Assert.Equal(0, journal.Dropped);
            var current = File.ReadAllLines(path);
            var previous = File.ReadAllLines(path + ".1");
            Assert.StartsWith("{\"t\":\"checkpoint\"", current[0]);
            Assert.StartsWith("{\"t\":\"checkpoint\"", previous[0]);
            Assert.True(new FileInfo(path).Length <= 64 * 1024 && new FileInfo(path + ".1").Length <= 64 * 1024);

            foreach (var (file, lines) in new[] { (path, current), (path + ".1", previous) })
            {
                var (stdout, stderr) = (new StringWriter(), new StringWriter());
                var exit = await ReplayCommand.Run(file, until: null, printStatus: false, stdout, stderr);
                var picks = lines.Count(l => l.StartsWith("{\"t\":\"pick\"", StringComparison.Ordinal));
                Assert.True(exit == 0, $"{file}: exit {exit}: {stdout} {stderr}");
                Assert.Equal($"{lines.Length} messages, {picks} picks, 0 divergences", stdout.ToString().Trim());
            }

            // The two files meet exactly: every pick numbered once, in order, across the boundary.
            var numbers = previous.Concat(current).Where(l => l.StartsWith("{\"t\":\"pick\"", StringComparison.Ordinal))
                .Select(l => long.Parse(l.Split(':')[2].Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(Enumerable.Range((int)numbers[0], numbers.Count).Select(n => (long)n), numbers);
            Assert.Equal(3000, numbers[^1]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
