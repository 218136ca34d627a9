#!/usr/bin/env -S dotnet run
#:sdk Microsoft.NET.Sdk.Web
#:property TreatWarningsAsErrors=true
// The load balancer's whole design in one file (docs/minimal/README.md): a ticker, a health
// checker, one owner of the backend state that selects over two channels, and a handler per
// request that asks the owner for a backend over a reply slot and forwards with a plain
// HttpClient. No YARP, no retries, no reload, no metrics. minimal.go is the same program in Go.
//
//   dotnet run minimal.cs -- 8080 http://127.0.0.1:8000 http://127.0.0.1:8001
//
// Port 0 takes a free port; the line "listening on http://..." says which.
using System.Threading.Channels;

var port = int.Parse(args[0]);
var backends = args[1..].Select(a => new Uri(a)).ToArray();
var interval = TimeSpan.FromSeconds(1);

// The channels, all bounded. Go: make(chan T, n)
var ticks = Channel.CreateBounded<DateTimeOffset>(new BoundedChannelOptions(1)
{
    FullMode = BoundedChannelFullMode.DropWrite, // slot full: the NEW tick is dropped
    SingleReader = true,
    SingleWriter = true,
});
var health = Channel.CreateBounded<Health>(new BoundedChannelOptions(64) { SingleReader = true });
var picks = Channel.CreateBounded<Pick>(new BoundedChannelOptions(1024) { SingleReader = true });

var probeClient = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
var forwardClient = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port));
var app = builder.Build();
var stopping = app.Lifetime.ApplicationStopping; // Go: ctx, from signal.NotifyContext

// 1. Ticker: a tick now, then one every interval, into the one-slot channel.
//    Go: for { select { case t := <-ticker.C: select { case ticks <- t: default: }; case <-ctx.Done(): return } }
var ticker = Task.Run(async () =>
{
    using var timer = new PeriodicTimer(interval);
    try
    {
        ticks.Writer.TryWrite(DateTimeOffset.UtcNow);
        while (await timer.WaitForNextTickAsync(stopping)) ticks.Writer.TryWrite(DateTimeOffset.UtcNow);
    }
    catch (OperationCanceledException) { } // stopping
    finally { ticks.Writer.TryComplete(); } // close(ticks)
});

// 2. Health checker: each tick, probe every backend at once and tell the owner each result.
//    Go: for range ticks { var round sync.WaitGroup; for _, b := range backends { go ... }; round.Wait() }
var checker = Task.Run(async () =>
{
    await foreach (var _ in ticks.Reader.ReadAllAsync())
        await Task.WhenAll(backends.Select(async b => await health.Writer.WriteAsync(new Health(b, await ProbeAsync(b)))));
    health.Writer.TryComplete(); // close(health): its only writer is done
});

async Task<bool> ProbeAsync(Uri backend)
{
    try
    {
        using var response = await probeClient.GetAsync(new Uri(backend, "/healthcheck"));
        return response.IsSuccessStatusCode;
    }
    catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return false; }
}

// 3. Owner: the only code that reads or writes `up` and `next`, so they need no lock.
//    Go: for { select { case h := <-health: ...; case p := <-picks: p.reply <- choose() } }
var owner = Task.Run(async () =>
{
    var up = backends.ToDictionary(b => b, _ => true); // takes traffic until a probe fails
    var next = 0;
    var never = new TaskCompletionSource<bool>().Task; // Go: a nil channel, never ready
    var healthReady = health.Reader.WaitToReadAsync().AsTask();
    var pickReady = picks.Reader.WaitToReadAsync().AsTask();
    while (healthReady != never || pickReady != never)
    {
        await Task.WhenAny(healthReady, pickReady); // wait, don't read: a read here could be lost
        while (health.Reader.TryRead(out var h)) // health first, so these picks see it
        {
            if (up[h.Backend] == h.Up) continue;
            up[h.Backend] = h.Up;
            Console.WriteLine($"backend {h.Backend} is {(h.Up ? "up" : "down")}");
        }
        while (picks.Reader.TryRead(out var p))
        {
            var alive = backends.Where(b => up[b]).ToArray();
            p.Reply.SetResult(alive.Length == 0 ? null : alive[next++ % alive.Length]);
        }
        // Re-arm only the wait that finished; false means closed and empty.
        if (healthReady.IsCompleted) healthReady = await healthReady ? health.Reader.WaitToReadAsync().AsTask() : never;
        if (pickReady.IsCompleted) pickReady = await pickReady ? picks.Reader.WaitToReadAsync().AsTask() : never;
    }
});

// 4. Handler, one per request: ask the owner (the reply slot travels inside the request), then
//    forward. Go: reply := make(chan *url.URL, 1); picks <- pick{reply}; backend := <-reply
app.Run(async context =>
{
    var reply = new TaskCompletionSource<Uri?>(TaskCreationOptions.RunContinuationsAsynchronously);
    await picks.Writer.WriteAsync(new Pick(reply));
    if (await reply.Task is not { } backend)
    {
        context.Response.StatusCode = 503; // no backend is up
        return;
    }
    var target = new Uri(backend, context.Request.Path + context.Request.QueryString);
    using var request = new HttpRequestMessage(new HttpMethod(context.Request.Method), target);
    if (context.Request.ContentLength > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        request.Content = new StreamContent(context.Request.Body);
    try
    {
        using var response = await forwardClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, context.RequestAborted);
        context.Response.StatusCode = (int)response.StatusCode;
        context.Response.ContentType = response.Content.Headers.ContentType?.ToString();
        await response.Content.CopyToAsync(context.Response.Body, context.RequestAborted);
    }
    catch (HttpRequestException)
    {
        context.Response.StatusCode = 502; // down, and the owner does not know yet: the next probe tells it
    }
});

await app.StartAsync();
Console.WriteLine($"listening on {app.Urls.First()}");
await app.WaitForShutdownAsync(); // Ctrl+C or SIGTERM: stop listening, let requests finish
picks.Writer.TryComplete();       // close(picks): no handler is left to ask
await Task.WhenAll(ticker, checker, owner); // Go: wg.Wait()

record Health(Uri Backend, bool Up);          // checker -> owner
record Pick(TaskCompletionSource<Uri?> Reply); // handler -> owner, with the reply slot inside
