using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Replay;
using Microsoft.Extensions.Logging.Abstractions;

namespace LoadBalancer.Tests.Pipeline;

// The writer's rotation as an operator meets it: the state task and the writer running, a small
// journal.maxSizeMB, enough traffic to fill the file several times; then each file on its own
// replays with zero divergences (PATH begins with a checkpoint the state task made on the
// writer's asking), and nothing is lost or written twice between the two files.
public sealed class JournalWriterTests
{
    [Fact]
    public async Task Rotation_SmallCap_PathAloneReplaysWithZeroDivergences()
    {
        var dir = Directory.CreateTempSubdirectory("lb-journal-");
        try
        {
            var path = Path.Combine(dir.FullName, "state.journal");
            var config = TestConfigs.Create("http://a:1", "http://b:2", "http://c:3") with { Balancing = BalancingNames.PowerOfTwo };
            var channels = new PipelineChannels();
            var clock = new StateClock(TimeProvider.System);
            var journal = new Journal(channels.Journal.Writer, clock);
            var writer = new JournalWriter(channels.Journal.Reader, new JournalConfig(path, 256 * 1024), NullLogger<JournalWriter>.Instance, channels.Events.Writer);
            var routes = new RouteFactory();
            var table = new BackendTable(config, (b, _) => routes.Create(b), clock, _ => { }, random: new Random(7));
            journal.Start(7, config);
            var state = new BackendState(channels, table, TimeProvider.System, NullLogger<BackendState>.Instance, clock, journal);
            await writer.StartAsync(CancellationToken.None);
            await state.StartAsync(CancellationToken.None);
            var client = new StateClient(channels);
            for (var i = 0; i < 12000; i++) // about 2.2 MB of records: the 256 KiB file fills over and over
            {
                var pick = await client.PickAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
                if (i % 5 == 4) await client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.ConnectRefused, 0)); // some ejections too
                else await client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
            }
            await state.StopAsync(CancellationToken.None);
            await writer.StopAsync(CancellationToken.None);

            Assert.True(File.Exists(path + ".1"), "the journal never rotated");
            Assert.Equal(0, journal.Dropped);
            var current = File.ReadAllLines(path);
            var previous = File.ReadAllLines(path + ".1");
            Assert.StartsWith("{\"t\":\"checkpoint\"", current[0]);
            Assert.True(new FileInfo(path).Length <= 384 * 1024 && new FileInfo(path + ".1").Length <= 384 * 1024); // passed by half at most while a checkpoint comes

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
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
