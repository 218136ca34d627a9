using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using LoadBalancer.Admin;
using LoadBalancer.Configuration;
using LoadBalancer.Forwarding;
using LoadBalancer.Pipeline;
using LoadBalancer.Probing;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Tests.Walkthrough;

// docs/walkthrough.md as a test. Read it top to bottom: one tick, then one request, through the
// REAL stages (PipelineChannels, Ticker, HealthChecker, BackendState, BackendTable, StateClient,
// ProxyEndpoint with YARP's forwarder), without the host and without Kestrel. Only the edges are
// fake: the clock (FakeTimeProvider), the probe (an NSubstitute IBackendProbe the test answers by
// hand) and the two backends (an HttpMessageHandler in place of each backend's socket pool).
// Nothing sleeps: the test moves the clock and awaits channel items or log lines, each with a
// safety deadline.
public sealed class OneTickOneRequestTests : IAsyncLifetime
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);
    static readonly DateTimeOffset Start = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    const string A = "http://a.test";
    const string B = "http://b.test";

    // lb.json for this walkthrough: two backends, the usual thresholds, one retry.
    const string LbJson = """
        {
          "balancing": "round-robin",
          "backends": [ { "url": "http://a.test" }, { "url": "http://b.test" } ],
          "healthCheck": { "interval": "10s", "timeout": "2s", "healthyThreshold": 2, "unhealthyThreshold": 2 },
          "retries": 1
        }
        """;

    readonly Stages _stages = new(LbJson);

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _stages.StopAsync();

    // ---- one tick ------------------------------------------------------------------------------

    [Fact]
    public async Task Tick_AtStartup_TravelsThroughHealthCheckerToALoggedStateChange()
    {
        // Stage 1, Ticker: a PeriodicTimer on the (fake) clock. It writes a tick at startup, so
        // the first probe round does not wait a whole interval.
        await _stages.Ticker.StartAsync(CancellationToken.None);
        var tick = await PeekAsync(_stages.Channels.Ticks.Reader);
        Assert.Equal(Start, tick.At); // notice: the clock has not moved; this is the startup tick

        // Stage 2, HealthChecker: takes the tick and, before probing anything, ASKS the state task
        // which backends to probe. It keeps no list of its own.
        await _stages.Checker.StartAsync(CancellationToken.None);
        var ask = Assert.IsType<ProbePlanRequest>(await PeekAsync(_stages.Channels.Requests.Reader));
        Assert.False(ask.Reply.Task.IsCompleted);            // notice: the reply slot travels inside the question, still empty
        Assert.Equal(0, _stages.Channels.Ticks.Reader.Count); // notice: the checker took the tick out of its channel
        Assert.Equal(0, _stages.Probes.Reader.Count);         // ...and probes nothing until the answer comes

        // Stage 3, BackendState: the only owner of backend state. Once it runs, it answers the plan
        // from BackendTable, and the checker probes every backend AT ONCE (fan-out).
        await _stages.State.StartAsync(CancellationToken.None);
        var (a, b) = await _stages.NextRoundAsync();
        Assert.False(a.Result.IsCompleted); // notice: both probes are in flight together;
        Assert.False(b.Result.IsCompleted); // neither waits for the other

        // b answers first: connection refused. The checker tells the state task at once (it does
        // not wait for a's answer): a ProbeResult on the events channel. The state task logs every
        // probe at Debug before applying it.
        b.Refuse();
        await _stages.Logs.WaitForAsync(l => l.Message.StartsWith("Probe http://b.test:", StringComparison.Ordinal), Deadline);
        var afterOneFailure = await _stages.StatusAsync();
        Assert.Equal("connection refused", Of(afterOneFailure, B).LastProbe!.Error);
        Assert.Equal(BackendHealth.Unknown, Of(afterOneFailure, B).State); // notice: ONE failure is not enough (unhealthyThreshold 2): b still takes traffic

        // a answers 200. Its first passed probe makes it healthy, and BackendTable reports the
        // change exactly once: this is the line an operator reads.
        a.Pass();
        var up = await _stages.Logs.WaitForAsync("Backend http://a.test is now", Deadline);
        Assert.Equal("Backend http://a.test is now healthy: probe passed: 200 [healthCheck: first probe]", up.Message);
        Assert.Equal(LogLevel.Information, up.Level);

        // One interval later the ticker ticks again (we move the clock; nothing sleeps) and the
        // whole path runs a second time. b fails again: two in a row, so now it is down.
        _stages.Time.Advance(Interval);
        var (a2, b2) = await _stages.NextRoundAsync();
        a2.Pass();
        b2.Refuse();
        var down = await _stages.Logs.WaitForAsync("Backend http://b.test is now", Deadline);
        Assert.Equal("Backend http://b.test is now unhealthy: 2 failed probes: connection refused [healthCheck.unhealthyThreshold]", down.Message);

        // The effect a client sees: picks skip b. Round-robin runs over the eligible backends only.
        var first = await _stages.PickAsync().WaitAsync(Deadline);
        var second = await _stages.PickAsync().WaitAsync(Deadline);
        Assert.Equal(A, first.Backend?.Url);
        Assert.Equal(A, second.Backend?.Url);
    }

    [Fact]
    public async Task Tick_WhileTheLastRoundIsStillProbing_WaitsInTheOneSlot()
    {
        // What happens to a tick when the health checker is slow. Host order: state task first.
        await _stages.StartAllAsync();
        var (a, b) = await _stages.NextRoundAsync(); // round 1, held in flight by the test

        // An interval passes while round 1 is still probing.
        _stages.Time.Advance(Interval);
        var waiting = await PeekAsync(_stages.Channels.Ticks.Reader);
        Assert.Equal(Start + Interval, waiting.At);             // notice: the new tick sits in the channel's one slot...
        Assert.Equal(1, _stages.Channels.Ticks.Reader.Count);
        Assert.Equal(0, _stages.Probes.Reader.Count);           // ...and no second round starts on top of the first

        // Round 1 ends; only now the checker reads the waiting tick and starts round 2.
        a.Pass();
        b.Pass();
        var (a2, b2) = await _stages.NextRoundAsync();
        Assert.Equal(0, _stages.Channels.Ticks.Reader.Count);   // notice: the slot is free again for the next tick
        a2.Pass();
        b2.Pass();
    }

    [Fact]
    public void Ticks_SlotAlreadyFull_DropsTheNewTick()
    {
        // The rest of the answer lives in the channel's options (PipelineChannels.Ticks):
        // capacity 1, FullMode DropWrite, like Go's time.Ticker.
        var ticks = new PipelineChannels().Ticks;
        Assert.True(ticks.Writer.TryWrite(new Tick(Start)));
        Assert.True(ticks.Writer.TryWrite(new Tick(Start + Interval))); // notice: true, yet dropped: DropWrite counts a drop as a successful write
        Assert.Equal(1, ticks.Reader.Count);                            // notice: no backlog of rounds builds up behind a slow checker
        Assert.True(ticks.Reader.TryRead(out var kept));
        Assert.Equal(Start, kept.At);                                   // the tick already waiting stays; the new one is the one dropped
    }

    // ---- one request ---------------------------------------------------------------------------

    [Fact]
    public async Task PickAsync_AskedBeforeTheStateTaskRuns_WaitsInRequestsWithItsReplySlot()
    {
        // What ProxyEndpoint does first, by hand: ask for a backend. StateClient wraps the question
        // in a PickRequest that carries its reply slot and writes it to the requests channel.
        var asking = _stages.PickAsync();
        var request = Assert.IsType<PickRequest>(await PeekAsync(_stages.Channels.Requests.Reader));
        Assert.Null(request.Exclude);    // a first attempt excludes nothing
        Assert.False(asking.IsCompleted); // notice: the asker waits on its reply slot, not on a lock

        // The state task starts, reads the request and fills the reply slot.
        await _stages.State.StartAsync(CancellationToken.None);
        var pick = await asking.WaitAsync(Deadline);
        Assert.Equal(A, pick.Backend?.Url);  // round-robin's first turn
        Assert.Equal(1, pick.Settings.Retries); // the reply also carries the forwarding rules in force (lb.json's retries)

        // Answering took an in-flight slot on a, counted by the state task in the same step.
        Assert.Equal(1, Of(await _stages.StatusAsync(), A).InFlight);

        // Telling how it went is one-way: a RequestOutcome on the events channel, no reply. It
        // releases the slot and counts the request.
        await _stages.Client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
        var after = await _stages.StatusWhenAsync(s => Of(s, A).InFlight == 0);
        Assert.Equal(1, Of(after, A).Requests);
    }

    [Fact]
    public async Task HandleAsync_OneRequest_IsForwardedThroughTheBackendsPoolAndReleasesItsSlot()
    {
        await _stages.StartAllAsync();
        var (a, b) = await _stages.NextRoundAsync();
        a.Pass();
        b.Pass();

        // Backend a holds its answer so we can look at the request while it is in flight.
        var arrived = new TaskCompletionSource<HttpRequestMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _stages.Backend(A).Answer = async request =>
        {
            arrived.TrySetResult(request);
            await release.Task;
            return Text("hello from a");
        };

        // Kestrel would call this from app.Run (Program.Build); here the test calls it directly.
        var context = NewContext("GET", "/hello", "?x=1");
        var handling = _stages.Proxy.HandleAsync(context);

        // YARP's IHttpForwarder built the backend's request from the client's and sent it through
        // a's own HttpMessageInvoker (its connection pool).
        var forwarded = await arrived.Task.WaitAsync(Deadline);
        Assert.Equal("http://a.test/hello?x=1", forwarded.RequestUri!.ToString());
        Assert.Equal("203.0.113.7", Header(forwarded, "X-Forwarded-For")); // the client's address
        Assert.Equal("lb.test", Header(forwarded, "X-Forwarded-Host"));    // the Host the client used

        // While a works on it, the state task counts one request in flight on a.
        Assert.Equal(1, Of(await _stages.StatusAsync(), A).InFlight);

        release.SetResult();
        await handling.WaitAsync(Deadline);
        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode); // the client gets a's response
        Assert.Equal("hello from a", Body(context));

        // The handler told the outcome in a finally block: the slot is released, the request counted.
        var after = await _stages.StatusWhenAsync(s => Of(s, A).InFlight == 0);
        Assert.Equal(1, Of(after, A).Requests);
        Assert.Equal(0, Of(after, A).Failures);
    }

    [Fact]
    public async Task HandleAsync_FirstBackendRefusesTheConnection_RetriesOnTheOtherWithTheBody()
    {
        // a has weight 3 here, so round-robin alone would send the retry to a again (a a b a, a a b a
        // ...): what sends it to b is the list of backends already tried, carried in the PickRequest.
        var stages = new Stages(LbJson.Replace("""{ "url": "http://a.test" }""", """{ "url": "http://a.test", "weight": 3 }"""));
        try
        {
            await stages.StartAllAsync();
            var (a, b) = await stages.NextRoundAsync();
            a.Pass();
            b.Pass();

            // a refuses the connection: nothing reached it, so even a POST may be sent again.
            stages.Backend(A).Answer = _ => throw new HttpRequestException(HttpRequestError.ConnectionError,
                "Connection refused (a.test:80)", new SocketException((int)SocketError.ConnectionRefused));
            string? bodyAtB = null;
            stages.Backend(B).Answer = async request =>
            {
                bodyAtB = await request.Content!.ReadAsStringAsync();
                return Text("hello from b");
            };

            var context = NewContext("POST", "/orders", body: "order=1");
            await stages.Proxy.HandleAsync(context).WaitAsync(Deadline);

            // Attempt 1 went to a (round-robin's turn) and failed before anything was sent; attempt 2
            // asked for a backend EXCLUDING a, got b, and b got the whole body.
            Assert.Equal(1, stages.Backend(A).Requests);
            Assert.Equal(1, stages.Backend(B).Requests);
            Assert.Equal("order=1", bodyAtB);
            Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode); // notice: the client never sees a's failure
            Assert.Equal("hello from b", Body(context));

            // Each attempt told its own outcome: a's counts as a failure, both slots are released.
            var after = await stages.StatusWhenAsync(s => Of(s, A).InFlight == 0 && Of(s, B).InFlight == 0);
            Assert.Equal(1, Of(after, A).Failures);
            Assert.Equal(1, Of(after, B).Requests);
            Assert.Equal(0, Of(after, B).Failures);
        }
        finally
        {
            await stages.StopAsync();
        }
    }

    // ---- shutdown ------------------------------------------------------------------------------

    [Fact]
    public async Task StopAsync_InTheHostsOrder_EachStageEndsBecauseItsInputClosed()
    {
        await _stages.StartAllAsync();
        var (a, b) = await _stages.NextRoundAsync();
        a.Pass();
        b.Pass();
        await _stages.Logs.WaitForAsync("Backend http://b.test is now healthy", Deadline);
        using var stopping = new CancellationTokenSource(Deadline);

        // (Kestrel stops first and drains its requests; there is no Kestrel here.) Then the stages
        // stop in reverse registration order. The ticker first: it closes ticks in its finally.
        await _stages.Ticker.StopAsync(stopping.Token);
        await _stages.Channels.Ticks.Reader.Completion.WaitAsync(Deadline); // Go: close(ticks)

        // Notice: nobody has stopped the checker yet, and its loop has ended anyway: await foreach
        // over a closed channel ends, like Go's for range.
        await _stages.Checker.ExecuteTask!.WaitAsync(Deadline);
        await _stages.Checker.StopAsync(stopping.Token);

        // The state task still answers: it waits without the stopping token, so requests Kestrel is
        // still draining get their picks and their outcomes are still counted.
        var late = await _stages.PickAsync().WaitAsync(Deadline);
        Assert.NotNull(late.Backend);
        await _stages.Client.TellAsync(new RequestOutcome(late.Backend!, Outcome.Response, 200));

        // Last, the state task: StopAsync closes events and requests; the loop drains and ends.
        await _stages.State.StopAsync(stopping.Token);
        Assert.True(_stages.State.ExecuteTask!.IsCompletedSuccessfully);

        // A question asked now fails at once instead of waiting forever (ProxyEndpoint answers 503).
        await Assert.ThrowsAsync<ChannelClosedException>(() => _stages.PickAsync());
    }

    [Fact]
    public async Task Build_HostedServices_StartInRegistrationOrderAndStopInReverse()
    {
        // Why that shutdown order holds in the real app: hosted services start in registration
        // order and stop in reverse. Program.Build registers ShutdownDrain first (its work is in
        // StoppingAsync, which the host calls on every service before any StopAsync), then the
        // sinks, the access-log writer, the journal writer (there even with journal.path unset: a
        // reload may set it) and BackendState, and the stages that feed the state task;
        // the web host (Kestrel) is added after every user service, so it starts last and stops
        // first. The config watcher is the last stage registered, so it is the first stage to stop;
        // The DNS resolver comes right after the state task: its first round, in its StartAsync, needs it running.
        // the access-log writer stops last of all and writes every line.
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes("""
            { "listen": "http://127.0.0.1:0", "admin": "http://127.0.0.1:0", "backends": [ { "url": "http://a.test" } ] }
            """), "lb.json");
        await using var app = Program.Build(config, Path.Combine(Path.GetTempPath(), "walkthrough-lb.json"),
            new Program.Options { Logging = l => l.ClearProviders() });

        // Left out: OpenTelemetry's exporter service (the /metrics plumbing, not a stage).
        var services = app.Services.GetServices<IHostedService>().Where(s => s.GetType().Name is not "TelemetryHostedService").ToArray();

        Assert.Equal(["ShutdownDrain", "AccessLogWriter", "JournalWriter", "BackendState", "DnsResolver", "HealthChecker", "Ticker", "ConfigWatcher", "GenericWebHostService"],
            services.Select(s => s.GetType().Name));
        Assert.IsAssignableFrom<IHostedLifecycleService>(services[0]); // so its StoppingAsync runs before any StopAsync
    }

    // ---- helpers -------------------------------------------------------------------------------

    // Waits until the channel has an item, then looks at it WITHOUT taking it: the stage it is
    // meant for still gets it. (Before the reading stage runs, or while it is busy elsewhere.)
    static async Task<T> PeekAsync<T>(ChannelReader<T> reader)
    {
        await reader.WaitToReadAsync().AsTask().WaitAsync(Deadline);
        Assert.True(reader.TryPeek(out var item));
        return item;
    }

    static BackendStatus Of(StatusSnapshot snapshot, string url) => snapshot.Backends.Single(b => b.Url == url);

    static DefaultHttpContext NewContext(string method, string path, string query = "", string? body = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Scheme = "http";
        context.Request.Protocol = "HTTP/1.1";
        context.Request.Host = new HostString("lb.test");
        context.Request.Path = path;
        context.Request.QueryString = new QueryString(query);
        context.Connection.RemoteIpAddress = IPAddress.Parse("203.0.113.7");
        if (body is not null)
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Request.Body = new MemoryStream(bytes);
            context.Request.ContentLength = bytes.Length;
            context.Request.ContentType = "application/x-www-form-urlencoded";
        }
        context.Response.Body = new MemoryStream();
        return context;
    }

    static string Body(HttpContext context) => Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());

    static string Header(HttpRequestMessage request, string name) =>
        request.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    static HttpResponseMessage Text(string text) => new(HttpStatusCode.OK) { Content = new StringContent(text) };

    // The pipeline as Program.Build wires it, minus the host: same constructors, same channels.
    sealed class Stages
    {
        readonly Dictionary<string, FakeBackend> _backends = [];
        readonly ILoggerFactory _loggers;
        int _nextId;

        public Stages(string lbJson)
        {
            var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes(lbJson), "lb.json");
            _loggers = LoggerFactory.Create(l => l.AddProvider(Logs).SetMinimumLevel(LogLevel.Debug));
            var tableLog = _loggers.CreateLogger<BackendTable>();

            Table = new BackendTable(config, CreateRoute, Time, change => Log.BackendChanged(tableLog, change.Backend.Url, change.State.Label(), change.Reason));
            State = new BackendState(Channels, Table, Time, _loggers.CreateLogger<BackendState>());
            Client = new StateClient(Channels);
            Checker = new HealthChecker(Channels.Ticks.Reader, Client, Probe);
            Ticker = new Ticker(Channels.Ticks.Writer, Channels.Periods.Reader, config.HealthCheck.Interval, Time);
            Proxy = new ProxyEndpoint(Client, Forwarder, Metrics, new AccessLog(Channels.AccessLog.Writer, Metrics), NullLogger<ProxyEndpoint>.Instance);

            // Every probe the checker starts is handed to the test, which answers it when it likes.
            Probe.ProbeAsync(default!, default!, default).ReturnsForAnyArgs(call =>
            {
                var held = new HeldProbe(call.Arg<BackendRoute>(), Time, call.Arg<CancellationToken>());
                Probes.Writer.TryWrite(held);
                return held.Result;
            });
        }

        public FakeTimeProvider Time { get; } = new(Start);
        public PipelineChannels Channels { get; } = new();
        public LogSink Logs { get; } = new();
        public IBackendProbe Probe { get; } = Substitute.For<IBackendProbe>();
        public Channel<HeldProbe> Probes { get; } = Channel.CreateUnbounded<HeldProbe>();
        public BackendTable Table { get; }
        public BackendState State { get; }
        public StateClient Client { get; }
        public HealthChecker Checker { get; }
        public Ticker Ticker { get; }
        public ProxyEndpoint Proxy { get; }
        public LbMetrics Metrics { get; } = new($"LoadBalancer.Test.{Guid.NewGuid():N}");

        public FakeBackend Backend(string url) => _backends[url];

        static readonly IHttpForwarder Forwarder =
            new ServiceCollection().AddLogging().AddHttpForwarder().BuildServiceProvider().GetRequiredService<IHttpForwarder>();

        // In the app, BackendPools.Create makes a SocketsHttpHandler per backend; here a fake one.
        BackendRoute CreateRoute(BackendConfig backend)
        {
            var handler = new FakeBackend(backend.Url);
            _backends[backend.Url] = handler;
            return new BackendRoute(++_nextId, backend.Url, backend.Key, new HttpMessageInvoker(handler));
        }

        /// <summary>Host order: the state task first, then the checker, then the ticker.</summary>
        public async Task StartAllAsync()
        {
            await State.StartAsync(CancellationToken.None);
            await Checker.StartAsync(CancellationToken.None);
            await Ticker.StartAsync(CancellationToken.None);
        }

        /// <summary>The next round's two probes, a's first.</summary>
        public async Task<(HeldProbe A, HeldProbe B)> NextRoundAsync()
        {
            var one = await Probes.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
            var two = await Probes.Reader.ReadAsync().AsTask().WaitAsync(Deadline);
            return one.Backend.Url == OneTickOneRequestTests.A ? (one, two) : (two, one);
        }

        public Task<StatusSnapshot> StatusAsync() => Client.StatusAsync().WaitAsync(Deadline);

        /// <summary>StateClient.PickAsync as a Task, whatever awaitable it returns, so the test can put a deadline on it.</summary>
        public async Task<Pick> PickAsync(BackendRoute[]? exclude = null) => await Client.PickAsync(exclude);

        // A tell (events) and a later ask (requests) travel on two channels, and nothing orders
        // two channels (in Go neither). The state task drains events before requests in each
        // batch, so the first answer is almost always fresh; ask again until it is.
        public async Task<StatusSnapshot> StatusWhenAsync(Func<StatusSnapshot, bool> done)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                var snapshot = await StatusAsync();
                if (done(snapshot)) return snapshot;
                if (clock.Elapsed > Deadline)
                    Assert.Fail("state never got there: " + string.Join("; ", snapshot.Backends.Select(b => b.ToString())));
            }
        }

        /// <summary>Stops whatever was started, in the host's order.</summary>
        public async Task StopAsync()
        {
            using var stopping = new CancellationTokenSource(Deadline);
            await Ticker.StopAsync(stopping.Token);
            await Checker.StopAsync(stopping.Token);
            await State.StopAsync(stopping.Token);
            State.Dispose();
            Checker.Dispose();
            Ticker.Dispose();
            _loggers.Dispose();
            Metrics.Dispose();
        }
    }

    // One probe the checker is waiting on; the test answers it. Cancelled on shutdown, as a real
    // probe is (IBackendProbe throws OperationCanceledException only then).
    sealed class HeldProbe
    {
        readonly TaskCompletionSource<ProbeResult> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly TimeProvider _time;

        public HeldProbe(BackendRoute backend, TimeProvider time, CancellationToken shutdown)
        {
            Backend = backend;
            _time = time;
            shutdown.Register(() => _result.TrySetCanceled(shutdown));
        }

        public BackendRoute Backend { get; }
        public Task<ProbeResult> Result => _result.Task;

        public void Pass() => _result.SetResult(new ProbeResult(Backend, _time.GetUtcNow(), 200, TimeSpan.FromMilliseconds(3), null));

        public void Refuse() => _result.SetResult(new ProbeResult(Backend, _time.GetUtcNow(), null, TimeSpan.FromMilliseconds(1), "connection refused"));
    }

    // A backend without sockets: what YARP sends through a BackendRoute's HttpMessageInvoker lands here.
    sealed class FakeBackend(string url) : HttpMessageHandler
    {
        int _requests;

        public int Requests => Volatile.Read(ref _requests);

        public Func<HttpRequestMessage, Task<HttpResponseMessage>> Answer { get; set; } =
            _ => Task.FromResult(Text($"hello from {url}"));

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _requests);
            return Answer(request);
        }
    }
}
