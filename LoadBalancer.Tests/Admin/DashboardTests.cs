using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using LoadBalancer.Admin.Dashboard;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace LoadBalancer.Tests.Admin;

// The dashboard over plain HTTP: what it serves, with which headers, and what its data says
// after real requests (the browser tests show the page itself).
public sealed partial class DashboardTests
{
    static async Task<(Balancer Lb, TestBackend[] Backends)> StartAsync()
    {
        var backends = await Task.WhenAll(TestBackend.StartAsync("a"), TestBackend.StartAsync("b"), TestBackend.StartAsync("c"));
        return (await Balancer.StartAsync(Balancer.Config(backends)), backends);
    }

    static async Task StopAsync(Balancer lb, TestBackend[] backends)
    {
        await lb.DisposeAsync();
        foreach (var b in backends) await b.DisposeAsync();
    }

    static async Task<JsonElement> DataAsync(Balancer lb) =>
        JsonDocument.Parse(await lb.Admin.GetStringAsync("/dashboard/data")).RootElement;

    static JsonElement Channel(JsonElement data, string name) =>
        data.GetProperty("pipeline").GetProperty("channels").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    static long Read(JsonElement channel, string type) =>
        channel.GetProperty("messages").EnumerateArray().Single(m => m.GetProperty("type").GetString() == type).GetProperty("read").GetInt64();

    [Fact]
    public async Task Get_Root_ServesThePageAndOnlyItsOwnFiles_UnderAStrictCsp()
    {
        var (lb, backends) = await StartAsync();
        try
        {
            var page = await lb.Admin.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            Assert.Equal(Dashboard.ContentSecurityPolicy, page.Headers.GetValues("Content-Security-Policy").Single());
            Assert.Contains("script-src 'self';", Dashboard.ContentSecurityPolicy);
            Assert.DoesNotContain("unsafe", Dashboard.ContentSecurityPolicy);
            Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());

            // Every file the page names is on this listener (no CDN), and each is served with its type.
            var html = await page.Content.ReadAsStringAsync();
            Assert.DoesNotContain("<script>", html);  // no inline script
            Assert.DoesNotContain("<style", html);    // no inline style
            Assert.DoesNotContain(" style=", html);
            var links = Reference().Matches(html).Select(m => m.Groups[1].Value).ToArray();
            Assert.Equal(5, links.Length);
            foreach (var link in links)
            {
                Assert.StartsWith("/dashboard/", link);
                var asset = await lb.Admin.GetAsync(link);
                Assert.Equal(HttpStatusCode.OK, asset.StatusCode);
                Assert.Equal("nosniff", asset.Headers.GetValues("X-Content-Type-Options").Single());
                var type = asset.Content.Headers.ContentType?.MediaType;
                Assert.Equal(Path.GetExtension(link) switch { ".js" => "text/javascript", ".css" => "text/css", _ => "image/svg+xml" }, type);
            }

            // Revalidation: the same file again is a 304 without a body.
            var etag = (await lb.Admin.GetAsync("/dashboard/app.js")).Headers.ETag!;
            using var again = new HttpRequestMessage(HttpMethod.Get, "/dashboard/app.js");
            again.Headers.IfNoneMatch.Add(etag);
            Assert.Equal(HttpStatusCode.NotModified, (await lb.Admin.SendAsync(again)).StatusCode);
            Assert.Equal("no-store", page.Headers.CacheControl?.ToString()); // the page itself shows the state of now
        }
        finally
        {
            await StopAsync(lb, backends);
        }
    }

    // Before (or without) its script, the page already lists every backend with its URL and
    // state, and every channel.
    [Fact]
    public async Task Get_Root_HasEveryBackendAndChannelInItsHtml()
    {
        var (lb, backends) = await StartAsync();
        try
        {
            var status = await lb.StatusAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (status.GetProperty("backends").EnumerateArray().Any(b => b.GetProperty("state").GetString() != "healthy") && DateTime.UtcNow < deadline)
                status = await lb.StatusAsync(); // the startup probes: then nothing moves while we look
            var html = await lb.Admin.GetStringAsync("/");
            foreach (var b in status.GetProperty("backends").EnumerateArray())
            {
                var (url, state) = (b.GetProperty("url").GetString()!, b.GetProperty("state").GetString()!);
                Assert.Matches($"<tr data-backend=\"{Regex.Escape(url)}\">.*?>{state}</span>", html);
            }
            Assert.Equal(3, Regex.Count(html, "<tr data-backend="));
            foreach (var channel in new[] { "periods", "ticks", "events", "requests", "accesslog", "accesslogsettings", "journal" })
                Assert.Contains($"<tr data-channel=\"{channel}\">", html);
        }
        finally
        {
            await StopAsync(lb, backends);
        }
    }

    [Fact]
    public async Task Dashboard_OtherMethodsAndUnknownFiles_AreRefused()
    {
        var (lb, backends) = await StartAsync();
        try
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, (await lb.Admin.PostAsync("/", null)).StatusCode);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, (await lb.Admin.PostAsync("/dashboard/data", null)).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await lb.Admin.GetAsync("/dashboard/../lb.json")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await lb.Admin.GetAsync("/dashboard/nothing.js")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await lb.Admin.GetAsync("/index.html")).StatusCode);
            // Never on the client port: there "/" is a request for the backends.
            Assert.StartsWith("backend-", await lb.Client.GetStringAsync("/"));
            Assert.StartsWith("backend-", await lb.Client.GetStringAsync("/dashboard/data"));
        }
        finally
        {
            await StopAsync(lb, backends);
        }
    }

    [Fact]
    public async Task Data_JournalOn_ItsChannelShowsTheRecordsTheWriterTook()
    {
        await using var a = await TestBackend.StartAsync("a");
        var config = Balancer.Config(a);
        config["journal"] = new System.Text.Json.Nodes.JsonObject { ["path"] = "journal.jsonl" };
        await using var lb = await Balancer.StartAsync(config);
        for (var i = 0; i < 5; i++) await lb.Client.GetStringAsync("/");

        // The writer takes each record a moment after the state task wrote it, and writes the
        // file once it has taken what waits: wait for the lines (woken by the file system), then
        // ask once. Asking /dashboard/data in a loop instead would itself journal a batch per ask,
        // and on a loaded machine could fill the journal's 128 batches before the writer ran.
        var file = Path.Combine(Path.GetDirectoryName(lb.ConfigPath)!, "journal.jsonl");
        await AccessLogFile.WaitForLinesAsync(file, lines =>
            lines.Count(l => l.StartsWith("{\"t\":\"pick\"", StringComparison.Ordinal)) >= 5
            && lines.Count(l => l.StartsWith("{\"t\":\"outcome\"", StringComparison.Ordinal)) >= 5);
        var journal = Channel(await DataAsync(lb), "journal");

        Assert.True(journal.GetProperty("enabled").GetBoolean());
        Assert.Equal("BackendState", journal.GetProperty("from").GetString());
        Assert.Equal("JournalWriter", journal.GetProperty("to").GetString());
        Assert.True(journal.GetProperty("read").GetInt64() >= 10, $"the journal channel shows {journal}");
        Assert.Equal(0, journal.GetProperty("dropped").GetInt64());
    }

    [Fact]
    public async Task Data_AfterRequests_ShowsStatusEveryChannelAndTheStateTask()
    {
        var (lb, backends) = await StartAsync();
        try
        {
            for (var i = 0; i < 20; i++) await lb.Client.GetStringAsync("/");
            var latency = lb.App.Services.GetRequiredService<DashboardLatency>();
            Assert.False(latency.On); // nobody has looked yet: nothing is counted for the page

            var data = await DataAsync(lb);
            Assert.True(latency.On);
            Assert.Equal(backends.Select(b => b.Url), data.GetProperty("status").GetProperty("backends").EnumerateArray().Select(b => b.GetProperty("url").GetString()));
            Assert.Equal("round-robin", data.GetProperty("status").GetProperty("balancing").GetString());

            var names = data.GetProperty("pipeline").GetProperty("channels").EnumerateArray().Select(c => c.GetProperty("name").GetString()).Order();
            Assert.Equal(["accesslog", "accesslogsettings", "events", "journal", "periods", "requests", "ticks"], names);
            Assert.True(Read(Channel(data, "requests"), "PickRequest") >= 20);
            Assert.True(Read(Channel(data, "events"), "RequestOutcome") >= 20);
            Assert.True(Read(Channel(data, "requests"), "StatusRequest") >= 1); // this very answer
            Assert.Equal(8192, Channel(data, "events").GetProperty("capacity").GetInt32());
            Assert.Equal(1, Channel(data, "ticks").GetProperty("capacity").GetInt32());
            Assert.True(Channel(data, "ticks").GetProperty("read").GetInt64() >= 1); // the startup tick
            Assert.False(Channel(data, "accesslog").GetProperty("enabled").GetBoolean());
            Assert.False(Channel(data, "journal").GetProperty("enabled").GetBoolean());
            var stateTask = data.GetProperty("pipeline").GetProperty("stateTask");
            Assert.True(stateTask.GetProperty("turns").GetInt64() >= 1);
            Assert.True(stateTask.GetProperty("busySeconds").GetDouble() > 0);

            // While someone looks, each request's duration lands in its backend's buckets.
            for (var i = 0; i < 9; i++) await lb.Client.GetStringAsync("/");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            long counted;
            do
            {
                data = await DataAsync(lb); // the handler records its request a moment after the client has the answer
                counted = data.GetProperty("latency").GetProperty("backends").EnumerateArray()
                    .Sum(b => b.GetProperty("counts").EnumerateArray().Sum(c => c.GetInt64()));
            } while (counted < 9 && DateTime.UtcNow < deadline);
            // 9, or 10 when the handler of the 20th request recorded it just after the first poll.
            Assert.InRange(counted, 9, 10);
            Assert.True(data.GetProperty("latency").GetProperty("counting").GetBoolean());

            // The feed and the drain buttons are offered exactly when this binary serves /events.
            var events = await lb.Admin.GetAsync("/events");
            Assert.Equal(events.StatusCode != HttpStatusCode.NotFound, data.GetProperty("features").GetProperty("events").GetBoolean());
        }
        finally
        {
            await StopAsync(lb, backends);
        }
    }

    [GeneratedRegex("""(?:src|href)="([^"]*)""")]
    private static partial Regex Reference();
}
