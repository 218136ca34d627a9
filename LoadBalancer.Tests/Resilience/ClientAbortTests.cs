using System.Text.Json.Nodes;
using System.Threading.Channels;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Resilience;

// Health: "A client that gives up (disconnects, cancels) is never the backend's failure."
// More give-ups than consecutiveFailures, and the backend is still in service.
public sealed class ClientAbortTests
{
    const int Aborts = 4; // more than consecutiveFailures below

    // Tells the test when a request has reached it, then stalls (before or after the response
    // headers) until the balancer lets go of the request.
    sealed class Slow(bool sendHeaders)
    {
        readonly TaskCompletionSource _never = new();
        public Channel<bool> Arrived { get; } = Channel.CreateUnbounded<bool>();
        public Channel<bool> Released { get; } = Channel.CreateUnbounded<bool>();

        public RequestDelegate Handler => async context =>
        {
            context.RequestAborted.Register(() => Released.Writer.TryWrite(true));
            if (sendHeaders)
            {
                await context.Response.Body.WriteAsync(new byte[1000]);
                await context.Response.Body.FlushAsync();
            }
            Arrived.Writer.TryWrite(true);
            await _never.Task.WaitAsync(context.RequestAborted);
        };
    }

    static JsonObject Passive(JsonObject config)
    {
        config["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = 2, ["ejectFor"] = "1m" };
        return config;
    }

    static Task Within<T>(ValueTask<T> read) => read.AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    [Fact]
    public async Task Get_ClientCancelsBeforeResponseHeaders_NotCountedAgainstBackend()
    {
        var slow = new Slow(sendHeaders: false);
        await using var backend = await TestBackend.StartAsync("slow", handler: slow.Handler);
        await using var lb = await Balancer.StartAsync(Passive(Balancer.Config(backend)));

        for (var i = 0; i < Aborts; i++)
        {
            using var cancel = new CancellationTokenSource();
            var request = lb.Client.GetAsync("/", cancel.Token);
            await Within(slow.Arrived.Reader.ReadAsync());
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            await Within(slow.Released.Reader.ReadAsync()); // the balancer let go of the backend too
        }

        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0);
        Assert.Equal(0, status.Failures());
        Assert.NotEqual("ejected", status.State());
        backend.Handler = null; // answers again: the next request is served, not refused with 503
        Assert.Equal("backend-slow", await lb.Client.GetStringAsync("/"));
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.StartsWith(backend.Now("ejected"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Get_ClientGoesAwayMidBody_NotCountedAgainstBackend()
    {
        var slow = new Slow(sendHeaders: true);
        await using var backend = await TestBackend.StartAsync("slow", handler: slow.Handler);
        await using var lb = await Balancer.StartAsync(Passive(Balancer.Config(backend)));
        // Without a drain, disposing a response with an unread body closes the connection at once.
        using var client = new HttpClient(new SocketsHttpHandler { MaxResponseDrainSize = 0 }) { BaseAddress = lb.Client.BaseAddress };

        for (var i = 0; i < Aborts; i++)
        {
            var response = await client.GetAsync("/", HttpCompletionOption.ResponseHeadersRead);
            var body = await response.Content.ReadAsStreamAsync();
            Assert.True(await body.ReadAsync(new byte[100]) > 0);
            await Within(slow.Arrived.Reader.ReadAsync());
            response.Dispose(); // unread body: HttpClient closes the connection
            await Within(slow.Released.Reader.ReadAsync());
        }

        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0);
        Assert.Equal(0, status.Failures());
        Assert.NotEqual("ejected", status.State());
        backend.Handler = null;
        Assert.Equal("backend-slow", await lb.Client.GetStringAsync("/"));
    }

    [Fact]
    public async Task Post_ClientStopsSendingBodyMidway_NotCountedAgainstBackend()
    {
        var arrived = Channel.CreateUnbounded<bool>();
        var released = Channel.CreateUnbounded<bool>();
        await using var backend = await TestBackend.StartAsync("sink", handler: async context =>
        {
            context.RequestAborted.Register(() => released.Writer.TryWrite(true));
            arrived.Writer.TryWrite(true);
            await GeneratedBody.ReadAsync(context.Request.Body, context.RequestAborted);
        });
        await using var lb = await Balancer.StartAsync(Passive(Balancer.Config(backend)));

        for (var i = 0; i < Aborts; i++)
        {
            using var cancel = new CancellationTokenSource();
            var stalled = new TaskCompletionSource();
            var content = new StreamingContent(async stream =>
            {
                await stream.WriteAsync(new byte[10_000]);
                await stream.FlushAsync();
                await stalled.Task.WaitAsync(cancel.Token); // the client gives up halfway
            });
            var request = lb.Client.PostAsync("/upload", content, cancel.Token);
            await Within(arrived.Reader.ReadAsync());
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);
            await Within(released.Reader.ReadAsync());
        }

        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0);
        Assert.Equal(0, status.Failures());
        Assert.NotEqual("ejected", status.State());
    }

    sealed class StreamingContent(Func<Stream, Task> write) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => write(stream);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
