using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LoadBalancer.Tests.Resilience;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// GET /explain, GET /events, POST /backends/drain and /undrain on the admin listener of the real
// balancer, as an operator (or the dashboard) uses them.
public sealed class ExplainEventsDrainTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Explain_Get_ContractShapeAndTheNextPickUnchanged()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b));

        var x = JsonDocument.Parse(await lb.Admin.GetStringAsync("/explain")).RootElement;

        Assert.Equal("round-robin", x.GetProperty("policy").GetString());
        var chosen = x.GetProperty("chosen").GetString();
        Assert.StartsWith("smooth weighted round-robin: ", x.GetProperty("rule").GetString());
        var candidates = x.GetProperty("candidates").EnumerateArray().ToArray();
        Assert.Equal([a.Url, b.Url], candidates.Select(c => c.GetProperty("url").GetString()));
        foreach (var c in candidates)
        {
            Assert.True(c.GetProperty("eligible").GetBoolean());
            Assert.StartsWith("eligible: ", c.GetProperty("reason").GetString());
            Assert.Equal((1, 1, 0, 0), (c.GetProperty("weight").GetInt32(), c.GetProperty("effectiveWeight").GetInt32(),
                c.GetProperty("inFlight").GetInt32(), c.GetProperty("maxInFlight").GetInt32()));
            Assert.Contains(c.GetProperty("state").GetString(), new[] { "unknown", "healthy" });
        }
        for (var i = 0; i < 100; i++) (await lb.Admin.GetAsync("/explain")).Dispose();
        Assert.Equal($"backend-{(chosen == a.Url ? "a" : "b")}", await lb.Client.GetStringAsync("/")); // the explained pick is the next one
    }

    [Fact]
    public async Task Events_SinceCursor_EachChangeOnceWithRuleAndEvidence()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b));
        await lb.Logs.WaitForAsync($"Backend {a.Url} is now healthy", Deadline);
        await lb.Logs.WaitForAsync($"Backend {b.Url} is now healthy", Deadline);

        var first = JsonDocument.Parse(await lb.Admin.GetStringAsync("/events?since=0")).RootElement;
        var events = first.GetProperty("events").EnumerateArray().ToArray();
        Assert.Equal(2, events.Length);
        Assert.Equal([1L, 2L], events.Select(e => e.GetProperty("seq").GetInt64()));
        Assert.Equal(2, first.GetProperty("next").GetInt64());
        var e0 = events.Single(e => e.GetProperty("backend").GetString() == a.Url);
        Assert.Equal(("unknown", "healthy"), (e0.GetProperty("from").GetString(), e0.GetProperty("to").GetString()));
        Assert.Equal("probe passed: 200 [healthCheck: first probe]", e0.GetProperty("reason").GetString());
        var evidence = e0.GetProperty("evidence").EnumerateArray().Single();
        Assert.Equal(("probe", "status 200", 200), (evidence.GetProperty("kind").GetString(), evidence.GetProperty("result").GetString(), evidence.GetProperty("status").GetInt32()));
        Assert.EndsWith("Z", e0.GetProperty("at").GetString());

        var none = JsonDocument.Parse(await lb.Admin.GetStringAsync("/events?since=2")).RootElement;
        Assert.Empty(none.GetProperty("events").EnumerateArray());
        Assert.Equal(2, none.GetProperty("next").GetInt64());

        (await Post(lb, "/backends/drain", a.Url)).Dispose();
        var next = JsonDocument.Parse(await lb.Admin.GetStringAsync("/events?since=2")).RootElement;
        Assert.Equal([(3L, "draining"), (4L, "drained")],
            next.GetProperty("events").EnumerateArray().Select(e => (e.GetProperty("seq").GetInt64(), e.GetProperty("to").GetString()!)));
        Assert.Equal(4, next.GetProperty("next").GetInt64());

        using var bad = await lb.Admin.GetAsync("/events?since=minus-one");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }

    [Fact]
    public async Task Drain_UnderLoad_ZeroClientErrorsDrainedEventThenNoTraffic_UndrainBringsItBack()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var a = await TestBackend.StartAsync("a", handler: async context =>
        {
            if (context.Request.Path == "/hold")
            {
                held.TrySetResult();
                await release.Task;
            }
            await context.Response.WriteAsync("backend-a");
        });
        await using var b = await TestBackend.StartAsync("b");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a, b));

        // One request held on a (it goes to a first: round-robin starts there), then steady load.
        var holding = lb.Client.GetAsync("/hold");
        await held.Task.WaitAsync(Deadline);
        using var stop = new CancellationTokenSource();
        var errors = 0;
        var served = 0;
        var afterDrain = -1;
        var fifty = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task LoadAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                using var r = await lb.Client.GetAsync("/");
                if (r.StatusCode != HttpStatusCode.OK) Interlocked.Increment(ref errors);
                var n = Interlocked.Increment(ref served);
                if (Volatile.Read(ref afterDrain) is >= 0 and var from && n >= from + 50) fifty.TrySetResult();
            }
        }
        var load = Enumerable.Range(0, 4).Select(_ => Task.Run(LoadAsync)).ToArray();

        using (var drained = await Post(lb, "/backends/drain", a.Url))
        {
            Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
        }
        var status = await lb.RequiredStatusAsync(a);
        Assert.Equal("draining", status.GetProperty("state").GetString());
        Assert.InRange(status.GetProperty("inFlight").GetInt32(), 1, 5); // the held request (and the load's, picked before) still run
        Assert.DoesNotContain(await Events(lb), e => e.To == "drained"); // the held one keeps it from drained

        release.SetResult();
        using (var r = await holding) Assert.Equal(HttpStatusCode.OK, r.StatusCode); // finished, not cut
        await lb.Logs.WaitForAsync($"Backend {a.Url} is now draining: drained: no request in flight", Deadline);
        Assert.Single(await Events(lb), e => e.Backend == a.Url && e.To == "drained");
        var seenByA = a.Requests; // nothing in flight to it now
        Volatile.Write(ref afterDrain, Volatile.Read(ref served));
        await fifty.Task.WaitAsync(Deadline); // traffic goes on, to b only
        Assert.Equal(seenByA, a.Requests);

        using (var undrained = await Post(lb, "/backends/undrain", a.Url)) Assert.Equal(HttpStatusCode.OK, undrained.StatusCode);
        stop.Cancel();
        await Task.WhenAll(load);
        Assert.Equal(0, errors);
        var bodies = new HashSet<string>();
        for (var i = 0; i < 2; i++) bodies.Add(await lb.Client.GetStringAsync("/"));
        Assert.Contains("backend-a", bodies); // back in the rotation
    }

    [Fact]
    public async Task Drain_AdminTokenSet_PostNeedsTheBearerToken()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = Balancer.Config(a);
        config["adminToken"] = "s3cret-token";
        await using var lb = await Balancer.StartAsync(config);

        using (var none = await Post(lb, "/backends/drain", a.Url)) Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        using (var wrong = await Post(lb, "/backends/drain", a.Url, "s3cret-tokeN")) Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.NotEqual("draining", (await lb.RequiredStatusAsync(a)).GetProperty("state").GetString()); // nothing changed
        Assert.Empty(await Events(lb, e => e.To is "draining"));

        using (var unknown = await Post(lb, "/backends/drain", "http://127.0.0.1:1", "s3cret-token")) Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using (var right = await Post(lb, "/backends/drain", a.Url, "s3cret-token")) Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.Equal("draining", (await lb.RequiredStatusAsync(a)).GetProperty("state").GetString());
        using var answer = await lb.Client.GetAsync("/");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode); // its only backend is drained
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{\"url\": 5}")]
    [InlineData("[]")]
    public async Task Drain_BadBody_400AndNothingChanges(string body)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using var response = await lb.Admin.PostAsync("/backends/drain", new StringContent(body));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.NotEqual("draining", (await lb.RequiredStatusAsync(a)).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Drain_HugeBody_413()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using var response = await lb.Admin.PostAsync("/backends/drain", new StringContent(new string('x', 1 << 20)));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Drain_OnTheClientListener_NotAnAdminEndpoint()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));

        using var response = await lb.Client.PostAsJsonAsync("/backends/drain", new { url = a.Url });

        Assert.Equal("backend-a", await response.Content.ReadAsStringAsync()); // forwarded like any request
        Assert.NotEqual("draining", (await lb.RequiredStatusAsync(a)).GetProperty("state").GetString());
    }

    // A web page on another site (CSRF), or one whose name was rebound to 127.0.0.1 (DNS
    // rebinding), reaches the loopback listener through the user's browser: refused, nothing drained.
    [Theory]
    [InlineData("Origin", "http://evil.example")]
    [InlineData("Sec-Fetch-Site", "cross-site")]
    [InlineData("Host", "evil.example")]
    public async Task Drain_FromABrowserPageOfAnotherSite_403AndNothingChanges(string header, string value)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var request = new HttpRequestMessage(HttpMethod.Post, "/backends/drain") { Content = new StringContent($"{{\"url\": \"{a.Url}\"}}") };
        if (header == "Host") request.Headers.Host = value + ":" + lb.App.AdminUri().Port;
        else request.Headers.Add(header, value);

        using var response = await lb.Admin.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.NotEqual("draining", (await lb.RequiredStatusAsync(a)).GetProperty("state").GetString());
        Assert.Empty(await Events(lb, e => e.To is "draining"));
        using var same = await Post(lb, "/backends/drain", a.Url); // the same POST from curl: taken
        Assert.Equal(HttpStatusCode.OK, same.StatusCode);
    }

    static Task<HttpResponseMessage> Post(Balancer lb, string path, string url, string? token = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(new { url }) };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return lb.Admin.SendAsync(request);
    }

    sealed record Event(long Seq, string Backend, string To);

    static async Task<List<Event>> Events(Balancer lb, Func<Event, bool>? where = null)
    {
        var page = JsonDocument.Parse(await lb.Admin.GetStringAsync("/events")).RootElement;
        return page.GetProperty("events").EnumerateArray()
            .Select(e => new Event(e.GetProperty("seq").GetInt64(), e.GetProperty("backend").GetString()!, e.GetProperty("to").GetString()!))
            .Where(where ?? (_ => true)).ToList();
    }
}
