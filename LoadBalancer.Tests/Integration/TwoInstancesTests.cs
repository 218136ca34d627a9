using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LoadBalancer.Tests.Support;
using Xunit.Abstractions;

namespace LoadBalancer.Tests.Integration;

// docs/scaling.md's measured example: two balancer processes with one lb.json (as behind an L4
// balancer or DNS round-robin), a client alternating between them. Every hash key and every
// affinity cookie lands on the same backend through both, because both compute the same
// rendezvous ranking and the same HMAC tokens from the same configuration; nothing is shared at
// run time. The counts are printed for the docs.
public sealed partial class TwoInstancesTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TwoProcesses_SameConfig_EveryKeyAndCookieOnTheSameBackendThroughBoth()
    {
        var backends = new List<TestBackend>();
        for (var i = 0; i < 4; i++) backends.Add(await TestBackend.StartAsync(((char)('a' + i)).ToString()));
        var dir = Directory.CreateTempSubdirectory("lb-two-").FullName;
        try
        {
            var config = Balancer.Config([.. backends]);
            config["balancing"] = "consistent-hash";
            config["hashKey"] = "header:X-User";
            config["affinity"] = new JsonObject { ["cookie"] = "lb", ["secret"] = "shared-between-instances" };
            var path = Path.Combine(dir, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());

            await using var one = LbProcess.Start("--config", path);
            await using var two = LbProcess.Start("--config", path);
            using var a = Client(await ListeningAsync(one));
            using var b = Client(await ListeningAsync(two));

            // 200 hash keys, each asked through both, alternating, twice.
            var keys = 0;
            var homes = new Dictionary<string, int>();
            for (var u = 0; u < 200; u++)
            {
                var seen = new HashSet<string>();
                foreach (var client in new[] { a, b, a, b }) seen.Add((await SendAsync(client, user: $"user-{u}")).Body);
                Assert.Single(seen);
                keys++;
                homes[seen.First()] = homes.GetValueOrDefault(seen.First()) + 1;
            }
            Assert.Equal(4, homes.Count);

            // 50 clients: the cookie from one instance, then alternating through both.
            var cookies = 0;
            for (var c = 0; c < 50; c++)
            {
                var (home, set) = await SendAsync(c % 2 == 0 ? a : b);
                var cookie = set!.Split(';')[0];
                foreach (var client in new[] { b, a, b, a })
                {
                    var (body, again) = await SendAsync(client, cookie: cookie);
                    Assert.Equal(home, body);
                    Assert.Null(again); // both instances accept the other's cookie as their own
                }
                cookies++;
            }
            output.WriteLine($"two instances: {keys} hash keys x 4 requests alternating: all on one backend each (spread {string.Join(", ", homes.OrderBy(h => h.Key).Select(h => $"{h.Key} {h.Value}"))}); {cookies} affinity cookies x 5 requests alternating: all on their backend");
        }
        finally
        {
            foreach (var backend in backends) await backend.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    static HttpClient Client(Uri listen) => new(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = listen };

    static async Task<Uri> ListeningAsync(LbProcess lb)
    {
        var line = await lb.WaitForOutputAsync("listening on");
        return new Uri(Listening().Match(line).Groups[1].Value);
    }

    [GeneratedRegex(@"listening on (http://[^,]+),")]
    private static partial Regex Listening();

    static async Task<(string Body, string? SetCookie)> SendAsync(HttpClient client, string? user = null, string? cookie = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        if (user is not null) request.Headers.Add("X-User", user);
        if (cookie is not null) request.Headers.Add("Cookie", cookie);
        using var response = await client.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadAsStringAsync(), response.Headers.TryGetValues("Set-Cookie", out var v) ? v.Single() : null);
    }
}
