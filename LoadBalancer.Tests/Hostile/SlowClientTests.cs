using System.Diagnostics;
using System.Threading.Channels;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace LoadBalancer.Tests.Hostile;

// Contract, issue 7: "a client that disconnects, stalls, or idles ... past its timeout" never
// counts against a backend; limits.requestHeadersTimeout disconnects a client that has not sent
// its request headers by then (slow-loris).
public sealed class SlowClientTests(ITestOutputHelper output)
{
    const int Repeats = 4; // more than passiveHealth.consecutiveFailures (3)

    static Task<T> Within<T>(ValueTask<T> read) => read.AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    [Fact]
    public async Task SlowLoris_OneHeaderByteEvery100ms_DisconnectedSoonAfterRequestHeadersTimeout()
    {
        await using var h = await HostileHarness.StartAsync(c => c["limits"] = new JsonObject { ["requestHeadersTimeout"] = "1s" });

        // Five at once, each: the request line, then a header that never ends, a byte at a time.
        var results = await h.UnderFireAsync(() => Task.WhenAll(Enumerable.Range(0, 5).Select(_ => SlowLorisAsync(h))));

        foreach (var (exchange, elapsed) in results)
        {
            output.WriteLine($"slow-loris: {elapsed.TotalSeconds:0.00} s, {exchange}");
            h.Expect(exchange.Closed && elapsed < TimeSpan.FromSeconds(5) && exchange.Final?.Status is null or 408,
                $"slow-loris with requestHeadersTimeout 1s: expected the balancer to disconnect it (perhaps after a 408) within 5 s; "
                + $"after {elapsed.TotalSeconds:0.0} s: {exchange}");
        }
        h.ExpectNothingForwarded("a slow-loris request");
        await h.VerifyAsync();
    }

    static async Task<(RawExchange, TimeSpan)> SlowLorisAsync(HostileHarness h)
    {
        var clock = Stopwatch.StartNew();
        await using var client = await RawClient.ConnectAsync(h.Client);
        await client.SendAsync("GET /hostile HTTP/1.1\r\nHost: example.com\r\nX-Slow: ");
        using var stop = new CancellationTokenSource();
        var drip = Task.Run(async () =>
        {
            // The client's pace is the attack itself: a byte every 100 ms, for at most 10 s.
            using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
            for (var i = 0; i < 100 && await pace.WaitForNextTickAsync(stop.Token); i++)
                if (!await client.SendAsync("a")) return;
        });
        var exchange = await client.ReadUntilCloseAsync(TimeSpan.FromSeconds(10));
        var elapsed = clock.Elapsed;
        stop.Cancel();
        try { await drip; } catch (OperationCanceledException) { }
        return (exchange, elapsed);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Post_ClientHangsUpMidUpload_NotCountedAgainstBackend(bool reset)
    {
        var arrived = Channel.CreateUnbounded<bool>();
        var released = Channel.CreateUnbounded<string>();
        await using var h = await HostileHarness.StartAsync(handler: async context =>
        {
            var buffer = new byte[64 * 1024];
            long read = 0;
            try
            {
                var n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted);
                read += n;
                arrived.Writer.TryWrite(true);
                while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0) read += n;
                released.Writer.TryWrite($"read the whole body ({read} bytes)");
            }
            catch (Exception e)
            {
                released.Writer.TryWrite($"body broke off after {read} bytes: {e.GetType().Name}");
            }
        });

        var ends = await h.UnderFireAsync(async () =>
        {
            var all = new List<string>();
            for (var i = 0; i < Repeats; i++)
            {
                var client = await RawClient.ConnectAsync(h.Client);
                await client.SendAsync("POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1000000\r\n\r\n" + new string('x', 10_000));
                await Within(arrived.Reader.ReadAsync()); // the upload has reached a backend
                if (reset) client.Abort();
                else await client.DisposeAsync();
                all.Add(await Within(released.Reader.ReadAsync()));
            }
            return all;
        });

        foreach (var end in ends)
            h.Expect(end.StartsWith("body broke off", StringComparison.Ordinal), $"the backend's side of the upload: {end}");
        await h.VerifyAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Get_ClientHangsUpMidDownload_NotCountedAgainstBackend(bool reset)
    {
        var released = Channel.CreateUnbounded<bool>();
        await using var h = await HostileHarness.StartAsync(handler: async context =>
        {
            // A large body sent slowly: 1 KiB every 20 ms, until the balancer lets go.
            context.Response.ContentLength = 10_000_000;
            var chunk = new byte[1024];
            using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            try
            {
                for (var i = 0; i < 500; i++)
                {
                    await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await pace.WaitForNextTickAsync(context.RequestAborted);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
            }
            released.Writer.TryWrite(context.RequestAborted.IsCancellationRequested);
        });

        var ends = await h.UnderFireAsync(async () =>
        {
            var all = new List<bool>();
            for (var i = 0; i < Repeats; i++)
            {
                var client = await RawClient.ConnectAsync(h.Client);
                await client.SendAsync("GET /download HTTP/1.1\r\nHost: example.com\r\n\r\n");
                var first = await client.ReadAtLeastAsync(2048, TimeSpan.FromSeconds(10)); // headers and the first bytes
                if (reset) client.Abort();
                else await client.DisposeAsync();
                all.Add(first.Length >= 2048 && await Within(released.Reader.ReadAsync()));
            }
            return all;
        });

        h.Expect(ends.All(e => e), "each download began, and the backend's side was let go when the client hung up: " + string.Join(", ", ends));
        await h.VerifyAsync();
    }
}
