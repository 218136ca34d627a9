using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Hostile;

// lb.json: requestTimeout covers only the wait for response headers; streamIdleTimeout is the
// longest gap on an exchange after its headers, tunnelIdleTimeout the longest on a WebSocket
// tunnel. Idling past one is the client's doing (or the stream's nature), never a backend's
// failure (contract, issue 7). The idle periods below are the behaviour under test, so they are
// real time, kept short.
public sealed class LongLivedTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    // Echoes WebSocket messages until the client closes; tells how the tunnel ended.
    static RequestDelegate Echo(Channel<string> ended) => async context =>
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    ended.Writer.TryWrite("closed by the client");
                    return;
                }
                await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
        {
            ended.Writer.TryWrite($"broken: {e.GetType().Name}");
        }
    };

    static Uri WebSocketUri(HostileHarness h) => new($"ws://{h.Client.Authority}/ws");

    [Fact]
    public async Task WebSocket_IdleLongerThanRequestTimeout_StillEchoes()
    {
        var ended = Channel.CreateUnbounded<string>();
        await using var h = await HostileHarness.StartAsync(c => c["requestTimeout"] = "500ms", Echo(ended));

        var echo = await h.UnderFireAsync(async () =>
        {
            using var socket = new ClientWebSocket();
            await socket.ConnectAsync(WebSocketUri(h), CancellationToken.None).WaitAsync(Deadline);
            await Task.Delay(TimeSpan.FromSeconds(2)); // idle: four times requestTimeout
            try
            {
                await socket.SendAsync("still here"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(Deadline);
                var buffer = new byte[100];
                var received = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(Deadline);
                var text = received.MessageType == WebSocketMessageType.Close ? $"(closed: {socket.CloseStatus})" : Encoding.UTF8.GetString(buffer, 0, received.Count);
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).WaitAsync(Deadline);
                return text;
            }
            catch (Exception e) when (e is WebSocketException or IOException or TimeoutException)
            {
                return $"{e.GetType().Name}: {e.Message}";
            }
        });

        h.Expect(echo == "still here", $"after 2 s idle with requestTimeout 500ms: expected the echo \"still here\", got {echo}");
        await h.VerifyAsync();
    }

    [Fact]
    public async Task WebSocket_IdleLongerThanTunnelIdleTimeout_ClosedByBalancerAndLogged()
    {
        var ended = Channel.CreateUnbounded<string>();
        await using var h = await HostileHarness.StartAsync(c => c["tunnelIdleTimeout"] = "1s", Echo(ended));

        var (how, after) = await h.UnderFireAsync(async () =>
        {
            using var socket = new ClientWebSocket();
            await socket.ConnectAsync(WebSocketUri(h), CancellationToken.None).WaitAsync(Deadline);
            var clock = Stopwatch.StartNew();
            try
            {
                var received = await socket.ReceiveAsync(new byte[100], CancellationToken.None).WaitAsync(Deadline);
                return ($"a {received.MessageType} message ({socket.CloseStatus})", clock.Elapsed);
            }
            catch (Exception e) when (e is WebSocketException or IOException)
            {
                return ($"broken: {e.GetType().Name}", clock.Elapsed);
            }
            catch (TimeoutException)
            {
                return ("still open", clock.Elapsed);
            }
        });

        h.Expect(how != "still open" && after >= TimeSpan.FromSeconds(0.9) && after < TimeSpan.FromSeconds(5),
            $"an idle tunnel with tunnelIdleTimeout 1s: expected the balancer to close it after about 1 s; after {after.TotalSeconds:0.0} s: {how}");
        h.Expect(await LoggedIdleAsync(h.Lb), "no log line says the idle tunnel was closed (looked for \"idle\")");
        await h.VerifyAsync();
    }

    static async Task<bool> LoggedIdleAsync(Balancer lb)
    {
        try
        {
            await lb.Logs.WaitForAsync(l => l.Message.Contains("idle", StringComparison.OrdinalIgnoreCase), TimeSpan.FromSeconds(5));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    // Server-sent events: headers at once, then one event per gap.
    static RequestDelegate Events(TimeSpan gap, int count, bool firstAtOnce = false) => async context =>
    {
        context.Response.ContentType = "text/event-stream";
        await context.Response.StartAsync(context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        try
        {
            for (var i = 1; i <= count; i++)
            {
                if (i > 1 || !firstAtOnce) await Task.Delay(gap, context.RequestAborted); // the stream's own pace
                await context.Response.WriteAsync($"data: {i}\n\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
    };

    // Reads events until the stream ends (or breaks, or the deadline passes): the events seen and how it ended.
    static async Task<(List<string> Events, string End, TimeSpan SinceFirst)> ReadEventsAsync(HostileHarness h)
    {
        using var client = new HttpClient { BaseAddress = h.Client, Timeout = Timeout.InfiniteTimeSpan };
        var events = new List<string>();
        var sinceFirst = new Stopwatch();
        try
        {
            using var response = await client.GetAsync("/events", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Deadline);
            if ((int)response.StatusCode != 200) return (events, $"status {(int)response.StatusCode}", sinceFirst.Elapsed);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            using var timeout = new CancellationTokenSource(Deadline);
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                events.Add(line["data: ".Length..]);
                sinceFirst.Start();
            }
            return (events, "ended", sinceFirst.Elapsed);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return (events, $"broken: {e.GetType().Name}", sinceFirst.Elapsed);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            return (events, "still open", sinceFirst.Elapsed);
        }
    }

    [Fact]
    public async Task ServerSentEvents_GapsLongerThanRequestTimeout_AllEventsArrive()
    {
        await using var h = await HostileHarness.StartAsync(c => c["requestTimeout"] = "500ms", Events(TimeSpan.FromSeconds(1), 3));

        var (events, end, _) = await h.UnderFireAsync(() => ReadEventsAsync(h));

        h.Expect(events.SequenceEqual(["1", "2", "3"]) && end == "ended",
            $"an event every 1 s with requestTimeout 500ms: expected events 1, 2, 3 and the stream's end; got [{string.Join(", ", events)}], {end}");
        await h.VerifyAsync();
    }

    [Fact]
    public async Task ServerSentEvents_GapLongerThanStreamIdleTimeout_CutAndLogged()
    {
        await using var h = await HostileHarness.StartAsync(c => c["streamIdleTimeout"] = "1s",
            Events(TimeSpan.FromSeconds(3), 2, firstAtOnce: true));

        var (events, end, sinceFirst) = await h.UnderFireAsync(() => ReadEventsAsync(h));

        h.Expect(events.SequenceEqual(["1"]) && end != "still open" && sinceFirst < TimeSpan.FromSeconds(3),
            $"a 3 s gap with streamIdleTimeout 1s: expected event 1, then the stream cut within the gap; "
            + $"got [{string.Join(", ", events)}], {end} {sinceFirst.TotalSeconds:0.0} s after the first event");
        h.Expect(await LoggedIdleAsync(h.Lb), "no log line says the idle stream was cut (looked for \"idle\"); lines about /events:\n    "
            + string.Join("\n    ", h.Lb.Logs.Lines.Where(l => l.Message.Contains("/events", StringComparison.Ordinal) || l.Message.StartsWith("Forward to", StringComparison.Ordinal) || l.Exception is not null)
                .Select(l => $"{l.Level} {l.Category}: {l.Message} {l.Exception?.GetType().Name}")));
        await h.VerifyAsync();
    }
}
