using System.Net;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Resilience;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// consistent-hash and cookie affinity as a client sees them through the real balancer, and what a
// hostile client can do with them (nothing to any backend's state, nothing to other clients).
public sealed class StickinessTests : IAsyncDisposable
{
    readonly List<TestBackend> _backends = [];

    async Task<TestBackend[]> BackendsAsync(int n)
    {
        for (var i = 0; i < n; i++) _backends.Add(await TestBackend.StartAsync(((char)('a' + i)).ToString()));
        return [.. _backends];
    }

    // Cookies by hand: Balancer.Client would keep the cookie it was given and send it along.
    static HttpClient NoCookies(Balancer lb) =>
        new(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = lb.Client.BaseAddress };

    static async Task<(string Body, string? SetCookie)> GetAsync(HttpClient client, string? cookie = null, string? user = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/");
        if (cookie is not null) request.Headers.Add("Cookie", cookie);
        if (user is not null) request.Headers.Add("X-User", user);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadAsStringAsync(),
            response.Headers.TryGetValues("Set-Cookie", out var values) ? Assert.Single(values) : null);
    }

    [Fact]
    public async Task ConsistentHash_SameHeaderSameBackend_NoHeaderRoundRobin_HugeHeaderHarmless()
    {
        var backends = await BackendsAsync(3);
        var config = Balancer.Config(backends);
        config["balancing"] = "consistent-hash";
        config["hashKey"] = "header:X-User";
        await using var lb = await Balancer.StartAsync(config);

        var homes = new HashSet<string>();
        for (var u = 0; u < 30; u++)
        {
            var first = (await GetAsync(lb.Client, user: $"user-{u}")).Body;
            for (var i = 0; i < 3; i++) Assert.Equal(first, (await GetAsync(lb.Client, user: $"user-{u}")).Body);
            homes.Add(first);
        }
        Assert.Equal(3, homes.Count); // 30 keys spread over all three

        var noKey = new List<string>();
        for (var i = 0; i < 3; i++) noKey.Add((await GetAsync(lb.Client)).Body);
        Assert.Equal(3, noKey.Distinct().Count());

        // A key of 16 KiB: hashed in one pass on the handler, never kept; nothing changes for anyone.
        var huge = new string('k', 16 * 1024);
        var hugeHome = (await GetAsync(lb.Client, user: huge)).Body;
        Assert.Equal(hugeHome, (await GetAsync(lb.Client, user: huge)).Body);
        foreach (var b in backends)
        {
            var status = await lb.RequiredStatusAsync(b);
            Assert.Equal(0, status.Failures());
            Assert.Contains(status.State(), new[] { "unknown", "healthy" });
        }
    }

    [Fact]
    public async Task Affinity_FirstResponseSetsTheCookieAndLaterRequestsStayUntilTheBackendGoes()
    {
        var backends = await BackendsAsync(3);
        var config = Balancer.Config(backends);
        config["affinity"] = new JsonObject { ["cookie"] = "lb", ["secret"] = "s3cret", ["maxAge"] = "1h" };
        config["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = 1 };
        await using var lb = await Balancer.StartAsync(config);
        using var client = NoCookies(lb);

        var (home, setCookie) = await GetAsync(client);
        Assert.NotNull(setCookie);
        Assert.Matches(@"^lb=[A-Za-z0-9_-]{43}; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax$", setCookie);
        var cookie = setCookie!.Split(';')[0];
        for (var i = 0; i < 6; i++)
        {
            var (body, again) = await GetAsync(client, cookie);
            Assert.Equal(home, body); // round-robin would have moved on
            Assert.Null(again); // no new cookie while it holds
        }

        // Its backend goes away: picked anew (the retry), with a new cookie that then holds.
        await backends.Single(b => $"backend-{b.Name}" == home).StopAsync();
        var (moved, fresh) = await GetAsync(client, cookie);
        Assert.NotEqual(home, moved);
        Assert.NotNull(fresh);
        Assert.Equal(moved, (await GetAsync(client, fresh!.Split(';')[0])).Body);
    }

    [Fact]
    public async Task Affinity_ForgedCookies_PickedNormallyGetARealCookieAndChangeNoState()
    {
        var backends = await BackendsAsync(2);
        var config = Balancer.Config(backends);
        config["affinity"] = new JsonObject { ["cookie"] = "lb", ["secret"] = "s3cret" };
        await using var lb = await Balancer.StartAsync(config);
        using var client = NoCookies(lb);

        var forged = new[] { "lb=" + new string('A', 43), "lb=../../etc", "lb=" + new string('x', 8000), "lb=a; lb=b" };
        var bodies = new List<string>();
        foreach (var cookie in forged)
        {
            var (body, set) = await GetAsync(client, cookie);
            bodies.Add(body);
            Assert.Matches(@"^lb=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Lax$", set); // no Max-Age: a session cookie
        }
        Assert.Equal(2, bodies.Distinct().Count()); // round-robin, as without a cookie
        foreach (var b in backends) Assert.Equal(0, (await lb.RequiredStatusAsync(b)).Failures());
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var b in _backends) await b.DisposeAsync();
    }
}
