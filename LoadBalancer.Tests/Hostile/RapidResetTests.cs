using System.Net;
using System.Text.Json.Nodes;

namespace LoadBalancer.Tests.Hostile;

// Issue 11 item 2: HTTP/2 must be as safe as HTTP/1.1. A rapid-reset flood (CVE-2023-44487) on
// one h2c connection: no backend changes state or counts a failure, a well-behaved HTTP/2 client
// on its own connection sees no error meanwhile, and the balancer stays up. Kestrel's own
// defence may end the flooding connection with a GOAWAY; that is allowed, not required.
public sealed class RapidResetTests
{
    [Fact]
    public async Task H2cRapidReset_NoBackendChangesStateAndOtherClientsSeeNoErrors()
    {
        await using var h = await HostileHarness.StartAsync(c => c["listenProtocols"] = new JsonArray("h2c"));
        h.CalmVersion = HttpVersion.Version20;
        Assert.True(await RapidReset.AnsweredAsync(h.Client), "the hand-made HEADERS frame is not a request the server answers");

        // Two seconds of it (a few hundred thousand pairs at most), unless the server ends it first.
        var flood = await h.UnderFireAsync(() => RapidReset.FloodAsync(h.Client, TimeSpan.FromSeconds(2), maxPairs: 300_000));

        h.Expect(flood.PairsSent >= 2_000 || flood.GoAwayReceived || flood.WriteError is not null,
            $"the flood barely started and was not refused: {flood}");
        h.Expect(flood.PairsPerSecond > 1_000 || flood.GoAwayReceived || flood.WriteError is not null, $"not a rapid flood: {flood}");
        using var admin = new HttpClient { BaseAddress = h.Lb.App.AdminUri() };
        h.Expect(await admin.GetStringAsync("/healthz") == "ok", "the balancer's /healthz stopped answering");
        // Still serving HTTP/2 on new connections after the flood.
        using var fresh = new HttpClient { BaseAddress = h.Client, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        h.Expect((await fresh.GetStringAsync("/calm/after")).StartsWith("backend-", StringComparison.Ordinal), "no answer after the flood");
        await h.VerifyAsync();
        // For the record: how fast, whether Kestrel sent GOAWAY, how many streams reached a backend.
        Console.WriteLine($"{flood}; {h.HostileSeen.Count} flood requests reached a backend");
    }
}
