using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LoadBalancer.Hosting;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// Graceful stop: the listening sockets close at once, a request sent afterwards on a kept-alive
// connection is answered with Connection: close and the connection then closed, a request
// already in flight finishes with Connection: close, and the process exits 0 without waiting
// out the grace once no client connection is open.
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class ShutdownTests
{
    const string StoppedListening = "no longer listening";
    const string GraceOver = "still open after the";
    const string Stopped = "LoadBalancer stopped, exit code 0";

    [Fact]
    public async Task StopAsync_KeptAliveConnection_NextRequestAnsweredWithConnectionCloseThenClosed()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var client = lb.App.ClientUri();
        await using var kept = await OpenKeptAliveConnectionAsync(client);

        var stopping = lb.App.StopAsync();
        await lb.Logs.WaitForAsync(StoppedListening);
        await AssertRefusedAsync(client);
        var stillServing = !stopping.IsCompleted;
        var response = await kept.SendAsync($"GET /after-stop HTTP/1.1\r\nHost: {client.Authority}\r\n");
        await kept.WaitForCloseAsync(TimeSpan.FromSeconds(10));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.True(stillServing, "the stop finished before the kept-alive connection's grace");
        Assert.Equal(200, response.Status);
        Assert.Equal("backend-a", response.Body);
        Assert.Equal(["close"], ConnectionHeaders(response));
        Assert.Equal(2, a.Requests);
        // The grace ended when the last client connection closed, not by the clock.
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.Contains(GraceOver));
    }

    [Fact]
    public async Task StopAsync_RequestInFlight_AnsweredWithConnectionCloseWhileNewConnectionsAreRefused()
    {
        var slow = new SlowBackend();
        await using var a = await TestBackend.StartAsync("a", handler: slow.Handle);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var client = lb.App.ClientUri();

        var inFlight = lb.Client.GetAsync("/slow");
        await slow.Arrived.WaitAsync(TimeSpan.FromSeconds(10));
        var stopping = lb.App.StopAsync();
        await lb.Logs.WaitForAsync(StoppedListening);
        await AssertRefusedAsync(client);
        var finishedEarly = inFlight.IsCompleted || stopping.IsCompleted;
        slow.Release();
        using var response = await inFlight.WaitAsync(TimeSpan.FromSeconds(10));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.False(finishedEarly, "the request or the stop finished before the backend answered");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
        Assert.True(response.Headers.ConnectionClose, "the answer during shutdown should carry Connection: close");
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.Contains(GraceOver));
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")] // Ctrl+C
    public async Task Signal_KeptAliveConnectionAndRequestInFlight_BothAnsweredWithConnectionCloseAndExitsZero(string signal)
    {
        var slow = new SlowBackend();
        await using var a = await TestBackend.StartAsync("a", handler: slow.Handle);
        var dir = Directory.CreateTempSubdirectory("lb-sigterm-");
        try
        {
            var (started, listen, admin) = await StartProcessAsync(a, dir);
            await using var lb = started;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
            Assert.Equal("ok", (await http.GetStringAsync(new Uri(admin, "/healthz"))).Trim());

            var inFlight = http.GetAsync(new Uri(listen, "/slow"));
            await slow.Arrived.WaitAsync(TimeSpan.FromSeconds(10));
            await using var kept = await OpenKeptAliveConnectionAsync(listen);
            await lb.SignalAsync(signal);
            var stoppedListening = await lb.WaitForOutputAsync(StoppedListening);
            await AssertRefusedAsync(listen);
            var keptResponse = await kept.SendAsync($"GET /quick HTTP/1.1\r\nHost: {listen.Authority}\r\n");
            await kept.WaitForCloseAsync(TimeSpan.FromSeconds(10));
            var exitedEarly = lb.HasExited;
            slow.Release();
            using var response = await inFlight.WaitAsync(TimeSpan.FromSeconds(10));
            var exitCode = await lb.WaitForExitAsync();

            Assert.Equal(200, keptResponse.Status);
            Assert.Equal("quick", keptResponse.Body);
            Assert.Equal(["close"], ConnectionHeaders(keptResponse));
            Assert.False(exitedEarly, "the process exited with a request in flight");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
            Assert.True(response.Headers.ConnectionClose, "the answer during shutdown should carry Connection: close");
            Assert.True(exitCode == 0, $"exit code {exitCode}; stderr: {lb.StandardError}");
            Assert.DoesNotContain(GraceOver, lb.StandardOutput);
            // The kept-alive connection is idle, the other is busy: the line tells them apart.
            Assert.Contains($"{StoppedListening}; 2 client connections open, 1 requests in flight;", stoppedListening);
            Assert.EndsWith(Stopped, lb.StandardOutput.Split('\n')[^1]);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Signal_NoClientConnectionOpen_ExitsZeroWithoutWaitingForGrace()
    {
        await using var a = await TestBackend.StartAsync("a");
        var dir = Directory.CreateTempSubdirectory("lb-sigterm-");
        try
        {
            var (started, _, admin) = await StartProcessAsync(a, dir);
            await using var lb = started;
            // A kept-alive admin connection (a metrics scraper) does not hold the stop.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
            Assert.Equal("ok", (await http.GetStringAsync(new Uri(admin, "/healthz"))).Trim());

            var clock = Stopwatch.StartNew();
            await lb.SignalAsync("TERM");
            var exitCode = await lb.WaitForExitAsync();
            var took = clock.Elapsed;

            Assert.True(exitCode == 0, $"exit code {exitCode}; stderr: {lb.StandardError}");
            Assert.Contains($"{StoppedListening}; 0 client connections open, 0 requests in flight;", lb.StandardOutput);
            Assert.EndsWith(Stopped, lb.StandardOutput.Split('\n')[^1]); // the last line
            Assert.DoesNotContain(GraceOver, lb.StandardOutput);
            // Waiting out the grace would take at least Grace (5 s); a stop with nothing to wait
            // for takes a fraction of a second, so this bound leaves a busy machine lots of room.
            Assert.True(took < ShutdownDrain.Grace, $"exit took {took.TotalSeconds:0.00} s, the grace is {ShutdownDrain.Grace.TotalSeconds} s");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    static Uri FreeAddress() => new($"http://127.0.0.1:{LbProcess.FreePort()}");

    // The balancer as a process, as a user runs it (lb.json with fixed ports), listening. A port
    // found free can be taken by a parallel test before the process binds it: then try new ones.
    internal static async Task<(LbProcess Process, Uri Listen, Uri Admin)> StartProcessAsync(TestBackend backend, DirectoryInfo dir,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var (listen, admin) = (FreeAddress(), FreeAddress());
            var config = Balancer.Config(backend);
            config["listen"] = listen.ToString().TrimEnd('/');
            config["admin"] = admin.ToString().TrimEnd('/');
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());
            var lb = LbProcess.Start(environment ?? new Dictionary<string, string>(), "--config", path);
            try
            {
                await lb.WaitForOutputAsync("listening on");
                return (lb, listen, admin);
            }
            catch (Exception e) when (attempt < 3 && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await lb.DisposeAsync();
            }
            catch
            {
                await lb.DisposeAsync();
                throw;
            }
        }
    }

    // A client connection with one request answered and kept alive, now idle.
    static async Task<RawConnection> OpenKeptAliveConnectionAsync(Uri client)
    {
        var kept = await RawConnection.OpenAsync(client);
        var response = await kept.SendAsync($"GET /quick HTTP/1.1\r\nHost: {client.Authority}\r\n");
        Assert.Equal(200, response.Status);
        Assert.Empty(ConnectionHeaders(response));
        return kept;
    }

    static string[] ConnectionHeaders(RawResponse response) =>
        response.Headers.Where(h => h.Key.Equals("Connection", StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToArray();

    // One connect, after the balancer said it no longer listens: it must be refused, not queued
    // or accepted.
    static async Task AssertRefusedAsync(Uri uri)
    {
        using var tcp = new TcpClient();
        var e = await Assert.ThrowsAsync<SocketException>(() => tcp.ConnectAsync(uri.Host, uri.Port).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SocketError.ConnectionRefused, e.SocketErrorCode);
    }

    // A backend handler that holds /slow until released and answers anything else at once.
    sealed class SlowBackend
    {
        readonly TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Arrived => _arrived.Task;
        public void Release() => _release.TrySetResult();

        public async Task Handle(HttpContext context)
        {
            if (context.Request.Path != "/slow")
            {
                await context.Response.WriteAsync("quick");
                return;
            }
            _arrived.TrySetResult();
            await _release.Task;
            await context.Response.WriteAsync("slow done");
        }
    }
}
