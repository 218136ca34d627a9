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

    // A folder is refused by the loader, so the reload is rejected and the journal stays as it
    // was. A file that cannot be created (here in /proc, which even root cannot write) turns the
    // journal off with one error naming it; requests go on, and a good path works again.
    [Fact]
    public async Task JournalPath_ReloadToAFolderOrAFileThatCannotOpen_RequestsGoOnAndAGoodPathWorksAgain()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = Balancer.Config(backend);
        await using var lb = await Balancer.StartAsync(config);
        var folder = Path.GetDirectoryName(lb.ConfigPath)!;
        var notAFile = Directory.CreateDirectory(Path.Combine(folder, "a-folder")).FullName;
        const string cannotCreate = "/proc/lb-test.journal";
        var good = Path.Combine(folder, "good.journal");

        config["journal"] = new JsonObject { ["path"] = notAFile };
        await lb.WriteConfigAsync(config);
        var rejected = await lb.Logs.WaitForAsync("rejected", TimeSpan.FromSeconds(10));
        Assert.Contains("journal.path", rejected.Message);
        Assert.Contains("is a folder", rejected.Message);

        config["journal"] = new JsonObject { ["path"] = cannotCreate };
        await lb.WriteConfigAsync(config);
        var error = await lb.Logs.WaitForAsync("Journal: cannot open", TimeSpan.FromSeconds(10));
        Assert.Contains(cannotCreate, error.Message);
        await RequestsAsync(lb, 3);

        config["journal"] = new JsonObject { ["path"] = good };
        await lb.WriteConfigAsync(config);
        await lb.Logs.WaitForCountAsync("Configuration reloaded", 2, TimeSpan.FromSeconds(10));
        await RequestsAsync(lb, 4);
        await lb.App.StopAsync();

        var stdout = new StringWriter();
        Assert.Equal(0, await ReplayCommand.Run(good, null, false, stdout, new StringWriter()));
        Assert.Contains(" 4 picks, 0 divergences", stdout.ToString());
        Assert.Single(lb.Logs.Lines, l => l.Message.Contains("Journal: cannot open", StringComparison.Ordinal));
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
