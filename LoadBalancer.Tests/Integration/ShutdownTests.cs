using System.Net;
using System.Net.Sockets;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Integration;

// Graceful stop: the listening socket closes at once, a request already in flight finishes
// (answered with Connection: close), and the process exits 0.
public sealed class ShutdownTests
{
    [Fact]
    public async Task StopAsync_RequestInFlight_CompletesWhileNewConnectionsAreRefused()
    {
        var slow = new SlowBackend();
        await using var a = await TestBackend.StartAsync("a", handler: slow.Handle);
        await using var lb = await Balancer.StartAsync(Balancer.Config(a));
        var client = lb.App.ClientUri();

        var inFlight = lb.Client.GetAsync("/slow");
        await slow.Arrived.WaitAsync(TimeSpan.FromSeconds(10));
        await using var idle = await OpenIdleConnectionAsync(client);
        var stopping = lb.App.StopAsync();
        await WaitUntilRefusedAsync(client);
        await idle.WaitForCloseAsync(TimeSpan.FromSeconds(10));
        var finishedEarly = inFlight.IsCompleted || stopping.IsCompleted;
        slow.Release();
        using var response = await inFlight.WaitAsync(TimeSpan.FromSeconds(10));
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.False(finishedEarly, "the request or the stop finished before the backend answered");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
        Assert.True(response.Headers.ConnectionClose, "the answer during shutdown should carry Connection: close");
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")] // Ctrl+C
    public async Task Signal_RequestInFlight_CompletesAndProcessExitsZero(string signal)
    {
        var slow = new SlowBackend();
        await using var a = await TestBackend.StartAsync("a", handler: slow.Handle);
        var listen = new Uri($"http://127.0.0.1:{LbProcess.FreePort()}");
        var admin = new Uri($"http://127.0.0.1:{LbProcess.FreePort()}");
        var dir = Directory.CreateTempSubdirectory("lb-sigterm-");
        try
        {
            var config = Balancer.Config(a);
            config["listen"] = listen.ToString().TrimEnd('/');
            config["admin"] = admin.ToString().TrimEnd('/');
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());
            await using var lb = LbProcess.Start("--config", path);
            await lb.WaitForOutputAsync("listening on");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
            Assert.Equal("ok", (await http.GetStringAsync(new Uri(admin, "/healthz"))).Trim());

            var inFlight = http.GetAsync(new Uri(listen, "/slow"));
            await slow.Arrived.WaitAsync(TimeSpan.FromSeconds(10));
            await using var idle = await OpenIdleConnectionAsync(listen);
            await lb.SignalAsync(signal);
            await WaitUntilRefusedAsync(listen);
            await idle.WaitForCloseAsync(TimeSpan.FromSeconds(10));
            var exitedEarly = lb.HasExited;
            slow.Release();
            using var response = await inFlight.WaitAsync(TimeSpan.FromSeconds(10));
            var exitCode = await lb.WaitForExitAsync();

            Assert.False(exitedEarly, "the process exited with a request in flight");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("slow done", await response.Content.ReadAsStringAsync());
            Assert.True(response.Headers.ConnectionClose, "the answer during shutdown should carry Connection: close");
            Assert.True(exitCode == 0, $"exit code {exitCode}; stderr: {lb.StandardError}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    // A kept-alive client connection with one request answered, now idle: a graceful stop closes
    // it. Kestrel closes the listener first, then walks its connections in the order they were
    // opened, telling each to close after its current request (so that answer gets
    // Connection: close). Opened after the slow request's connection, this one closing shows the
    // walk has passed the slow one; releasing the slow request before that would race it.
    static async Task<RawConnection> OpenIdleConnectionAsync(Uri client)
    {
        var idle = await RawConnection.OpenAsync(client);
        var response = await idle.SendAsync($"GET /quick HTTP/1.1\r\nHost: {client.Authority}\r\n");
        Assert.Equal(200, response.Status);
        return idle;
    }

    // Connects until the listener refuses (or resets a connect that raced with its close): a
    // connection accepted before the stop took effect is fine, but the socket must close
    // promptly. No sleeping: each try is one connect.
    static async Task WaitUntilRefusedAsync(Uri uri)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            using var tcp = new TcpClient();
            try
            {
                await tcp.ConnectAsync(uri.Host, uri.Port);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset)
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"{uri} still accepts new connections 10 s after the stop began");
            await Task.Yield();
        }
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
