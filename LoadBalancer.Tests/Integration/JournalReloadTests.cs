using System.Text.Json.Nodes;
using LoadBalancer.Replay;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// journal.path applies on reload, as every key but listen and admin does (contract, Reload): set,
// it starts a file whose first record is a checkpoint of the running table, so the file replays
// alone; changed, the old file ends and the new one starts the same way; unset, nothing more is
// written. The real balancer in process, real requests, the real replay.
public sealed class JournalReloadTests
{
    [Fact]
    public async Task JournalPath_SetChangedAndUnsetByReload_EachFileReplaysAloneWithItsOwnPicks()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = Balancer.Config(backend);
        await using var lb = await Balancer.StartAsync(config);
        var first = Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "first.journal");
        var second = Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "second.journal");

        await RequestsAsync(lb, 3); // not journaled: the journal is off

        config["journal"] = new JsonObject { ["path"] = first };
        await lb.WriteConfigAsync(config);
        await lb.Logs.WaitForCountAsync("Configuration reloaded", 1, TimeSpan.FromSeconds(10));
        await RequestsAsync(lb, 5);

        config["journal"] = new JsonObject { ["path"] = second };
        await lb.WriteConfigAsync(config);
        await lb.Logs.WaitForCountAsync("Configuration reloaded", 2, TimeSpan.FromSeconds(10));
        await RequestsAsync(lb, 4);

        config.Remove("journal");
        await lb.WriteConfigAsync(config);
        await lb.Logs.WaitForCountAsync("Configuration reloaded", 3, TimeSpan.FromSeconds(10));
        await RequestsAsync(lb, 2); // not journaled: off again
        await lb.App.StopAsync(); // the writer writes out what is queued

        foreach (var (file, picks) in new[] { (first, 5), (second, 4) })
        {
            var lines = await File.ReadAllLinesAsync(file);
            Assert.StartsWith("{\"t\":\"checkpoint\"", lines.SkipWhile(l => l.StartsWith("{\"t\":\"clock\"")).First());
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var exit = await ReplayCommand.Run(file, null, false, stdout, stderr);
            Assert.True(exit == 0, $"{file}: exit {exit}: {stdout}{stderr}");
            Assert.Contains($" {picks} picks, 0 divergences", stdout.ToString());
        }
    }

    static async Task RequestsAsync(Balancer lb, int n)
    {
        for (var i = 0; i < n; i++)
        {
            using var response = await lb.Client.GetAsync("/");
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }
    }
}
