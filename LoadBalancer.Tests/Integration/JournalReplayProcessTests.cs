using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// The journal end to end, as an operator uses it: the real balancer process with journal.path,
// under traffic, while a backend is killed and the configuration is reloaded; then stopped, and
// `LoadBalancer replay` run on the file it wrote.
public sealed partial class JournalReplayProcessTests
{
    [Fact]
    public async Task Replay_JournalOfARunWithAKillAndAReload_Exit0AndPicksMatchWhatTheBackendsSaw()
    {
        var dir = Directory.CreateTempSubdirectory("lb-journal-");
        try
        {
            await using var a = await TestBackend.StartAsync("a");
            await using var b = await TestBackend.StartAsync("b");
            await using var c = await TestBackend.StartAsync("c");
            var journal = Path.Combine(dir.FullName, "state.journal");
            var config = Balancer.Config(a, b);
            config["healthCheck"] = new JsonObject { ["interval"] = "200ms", ["timeout"] = "1s", ["unhealthyThreshold"] = 1 };
            config["journal"] = new JsonObject { ["path"] = "state.journal" };
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());

            await using var lb = LbProcess.Start("--config", path);
            var started = Started().Match(await lb.WaitForOutputAsync("LoadBalancer listening on"));
            using var client = new HttpClient { BaseAddress = new Uri(started.Groups[1].Value) };
            using var admin = new HttpClient { BaseAddress = new Uri(started.Groups[2].Value) };
            await lb.WaitForOutputAsync($"Backend {b.Url} is now healthy");

            var ok = 0;
            async Task TrafficAsync(int n)
            {
                for (var i = 0; i < n; i++)
                {
                    using var r = await client.GetAsync("/");
                    if (r.StatusCode == HttpStatusCode.OK) ok++;
                }
            }
            await TrafficAsync(40);
            await b.StopAsync(); // killed: connects are refused, retried on a
            await TrafficAsync(40);
            await lb.WaitForOutputAsync($"Backend {b.Url} is now");
            (await admin.GetAsync("/explain")).Dispose();
            config["backends"] = new JsonArray(new JsonObject { ["url"] = a.Url }, new JsonObject { ["url"] = c.Url, ["weight"] = 2 });
            await File.WriteAllTextAsync(path, config.ToJsonString());
            await lb.WaitForOutputAsync("Configuration reloaded");
            await TrafficAsync(40);
            (await admin.GetAsync("/status")).Dispose();
            await lb.SignalAsync("TERM");
            Assert.Equal(0, await lb.WaitForExitAsync(TimeSpan.FromSeconds(40)));
            Assert.Equal(120, ok); // retries hid the kill from every client

            await using var replay = LbProcess.Start("replay", journal);
            var exit = await replay.WaitForExitAsync(TimeSpan.FromSeconds(60));

            Assert.True(exit == 0, $"exit {exit}: {replay.StandardOutput} {replay.StandardError}");
            var summary = Summary().Match(replay.StandardOutput.Trim());
            Assert.True(summary.Success, replay.StandardOutput);
            var records = File.ReadAllLines(journal).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(records.Count, int.Parse(summary.Groups[1].Value));
            var picks = records.Where(r => r.GetProperty("t").GetString() == "pick").ToList();
            Assert.Equal(picks.Count, int.Parse(summary.Groups[2].Value));
            // Every pick that named a backend was forwarded there; the backends saw exactly the ones answered.
            var answers = records.Where(r => r.GetProperty("t").GetString() == "answer").ToList();
            Assert.Equal(picks.Count, answers.Count); // every pick answered exactly once
            var answered = answers.Count(a => a.GetProperty("route").ValueKind == JsonValueKind.Number);
            var outcomes = records.Where(r => r.GetProperty("t").GetString() == "outcome").ToList();
            Assert.Equal(answered, outcomes.Count);
            Assert.Equal(a.Requests + b.Requests + c.Requests, outcomes.Count(o => o.GetProperty("kind").GetString() == "Response"));
            Assert.Contains(outcomes, o => o.GetProperty("kind").GetString() == "ConnectRefused");
            Assert.Contains(records, r => r.GetProperty("t").GetString() == "config");
            Assert.True(c.Requests > 0);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [GeneratedRegex(@"listening on (\S+), admin on (\S+),")]
    private static partial Regex Started();

    [GeneratedRegex(@"^(\d+) messages, (\d+) picks, 0 divergences$")]
    private static partial Regex Summary();
}
