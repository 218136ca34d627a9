using System.Net;
using LoadBalancer.Admin;
using LoadBalancer.Admin.Dashboard;
using LoadBalancer.Configuration;
using LoadBalancer.Forwarding;
using LoadBalancer.Hosting;
using LoadBalancer.Pipeline;
using LoadBalancer.Probing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer;

// config -> channels -> stages -> Kestrel. Eight stages, nine channels (the diagram with every
// message: README.md, "How it is built"):
//
//   ConfigWatcher --periods--> Ticker --ticks--> HealthChecker --events, requests--> BackendState
//        '--------------------------events (ConfigChanged)------------------------------^  ^
//   ProxyEndpoint (per request), AdminEndpoints (/status), BackendPools --events, requests-'
//   CertificateWatcher (https listen only) --swaps the pair--> Kestrel's TLS handshakes
//   ConfigWatcher --tlssettings (a reload's tls, listenProtocols)--^
//
//   ProxyEndpoint --accesslog (TryWrite only)--> AccessLogWriter --> stdout or a file
//   ConfigWatcher --accesslogsettings--------------^
//   DnsResolver (its own ticker) --requests (DiscoveryPlanRequest), events (MembershipChanged)--> BackendState
//
//   BackendState --journal (TryWrite only, journal.path set)--> JournalWriter --> journal.path
//        ^-----journalfree (emptied batches back), events (CheckpointWanted)-----'
public static partial class Program
{
    // Socket completions run inline on the socket engine's epoll thread instead of being queued to
    // the thread pool: on one core this removes a thread hop (and often a context switch) from
    // every read and write, to the client and to the backend. It is what nginx's event loop does;
    // it is safe here because nothing on the request path blocks (the state task is asked
    // through a channel, never waited on synchronously). Measured with compare.sh: 0.93x -> 0.63x
    // YARP's CPU per request (docs/performance.md). Set the variable to 0 to turn it off.
    const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    // What one client connection may have read ahead of its request's use (64 KiB: YARP's copy buffer).
    const int ReadAhead = 64 * 1024;

    // A test seam, not configuration: the contract fixes the stop's drain at 30 s and lb.json has
    // no key for it. The process tests set it (e.g. "2s") so that a stop that runs out of time
    // does not take half a minute. Read only here, in Main.
    const string ShutdownTimeoutForTests = "LOADBALANCER_TEST_SHUTDOWN_TIMEOUT";

    public static async Task<int> Main(string[] args)
    {
        // Before the first socket exists: the socket engine reads this once.
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
            Environment.SetEnvironmentVariable(InlineCompletions, "1");

        var command = CommandLine.Parse(args);
        if (command.Answer() is { } answered) return answered; // --help, --version, a bad argument
        if (command.Do == CommandLine.Action.Replay) return await Replay.ReplayCommand.Run(command.ReplayPath!, command.Until, command.PrintStatus, Console.Out, Console.Error);
        var warnings = new List<string>();
        if (command.Load(warnings) is not { } config) return CommandLine.ExitConfiguration;
        if (command.Do == CommandLine.Action.Check) return command.Report(config, warnings); // binds nothing

        var options = Environment.GetEnvironmentVariable(ShutdownTimeoutForTests) is { } t && Durations.TryParse(t, out var timeout)
            ? new Options { ShutdownTimeout = timeout } : null;
        var app = Build(config, command.ConfigPath, options);
        var configLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("LoadBalancer");
        foreach (var warning in warnings) Log.ConfigWarning(configLog, warning);
        // A listener that cannot bind: one line and exit, and the app is left undisposed on
        // purpose. Disposing it cancels the stages' stopping tokens, and since .NET 10 a
        // BackgroundService's ExecuteAsync runs inside Task.Run(..., stoppingToken): a stage not
        // yet scheduled then ends Canceled and the host logs that as a crash (Critical, with a
        // trace), an operator-visible lie about a port in use. Nothing was bound; the process ends.
        try
        {
            await app.StartAsync();
        }
        catch (CannotListenException e) // a port in use, no permission: before any probe ran
        {
            var which = e.EndPoint.Equals(EndPoint(config.Listen)) ? "listen" : "admin";
            Console.Error.WriteLine($"error: cannot listen on {(which == "listen" ? config.Listen.Scheme : "http")}://{e.EndPoint} ({which}): {e.Reason}");
            return CommandLine.ExitEnvironment;
        }
        catch (IOException e) // Kestrel's own wording for a bind it failed otherwise
        {
            Console.Error.WriteLine($"error: cannot listen: {e.Message}");
            return CommandLine.ExitEnvironment;
        }
        await using var running = app;
        try
        {
            await app.WaitForShutdownAsync();
        }
        catch (Exception e) when (e is OperationCanceledException
            || e is AggregateException a && a.InnerExceptions.All(x => x is OperationCanceledException))
        {
            // A hosted service stopped waiting once the shutdown timeout was spent, which is what
            // IHostedService.StopAsync's token allows. The contract counts a stop that ran out
            // as a normal one (exit 0); ShutdownDrain has logged what was cut.
        }
        Log.Stopped(configLog, Environment.ExitCode);
        return Environment.ExitCode;
    }

    /// <summary>Seams for tests: a fake clock, a substituted probe, where the logs go, a shorter stop.</summary>
    public sealed class Options
    {
        public TimeProvider Time { get; init; } = TimeProvider.System;
        public IBackendProbe? Probe { get; init; }
        public Action<ILoggingBuilder>? Logging { get; init; }
        public string MeterName { get; init; } = LbMetrics.MeterName;
        /// <summary>How long a stop may drain in all (the contract's 30 s); tests use a few seconds.</summary>
        public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
        /// <summary>The DNS client discovery uses (null: DnsClient's LookupClient on discovery.nameservers).</summary>
        public Func<DiscoveryConfig, DnsClient.IDnsQuery>? Dns { get; init; }
    }

    public static WebApplication Build(LbConfig config, string configPath, Options? options = null)
    {
        options ??= new Options();
        var time = options.Time;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        // lb.json is the only configuration. ASP.NET Core's own sources (appsettings.json in the
        // working directory, watched for changes; ASPNETCORE_URLS and other variables) could add
        // Kestrel endpoints lb.json never named, outside the connection gate, or change logging
        // behind the operator's back. Cleared before anything reads them (Kestrel reads its
        // section when it starts); this also drops the file watcher each app would hold.
        // (ASPNETCORE_URLS is read into the host's settings before this: Kestrel then warns that it
        // binds lb.json's addresses instead, which is what happens.)
        builder.Configuration.Sources.Clear();

        ConfigureLogging(builder.Logging, options);

        // Graceful stop: ShutdownDrain closes the listening sockets and gives open client
        // connections a short grace; then Kestrel lets requests finish (up to 30 s in all), then
        // the stages stop in reverse order of registration.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        // The real clock: a test's fake clock drives probes, not the stop.
        builder.Services.AddSingleton(sp => new ShutdownDrain(TimeProvider.System, sp.GetRequiredService<ILogger<ShutdownDrain>>(), options.ShutdownTimeout));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ShutdownDrain>());
        TrackingListenerFactory.Decorate(builder.Services);

        var connectionLimit = new ClientConnectionLimit(config.Limits.MaxClientConnections);
        // https listen: the pair is loaded now (a broken one throws ConfigException) and watched below.
        var certificate = config.Tls is { } tls ? new ServerCertificate(CertificatePair.Load(tls, config.ListenProtocols, configPath)) : null;
        var listeners = ConfigureListeners(builder, config, connectionLimit, certificate);

        // The channels and the stages. Registered sink first: hosted services start in this
        // order and stop in reverse (after Kestrel, which stops first), so the config watcher
        // stops first, then the ticker, the health checker, and the state task last.
        var channels = new PipelineChannels();
        var state = new StateClient(channels);
        var metrics = new LbMetrics(options.MeterName);
        var pools = new BackendPools(state);
        var accessLog = new AccessLog(channels.AccessLog.Writer, metrics);
        builder.Services.AddSingleton(channels);
        builder.Services.AddSingleton(accessLog);
        var requestKeys = new RequestKeys(config);
        builder.Services.AddSingleton(requestKeys);
        builder.Services.AddSingleton(state);
        builder.Services.AddSingleton(metrics);
        builder.Services.AddSingleton(connectionLimit);
        // The access log first, so it stops last: after Kestrel, it writes what is queued. The
        // real clock checks for log rotation, whatever clock a test gives the probes.
        builder.Services.AddSingleton(sp => new AccessLogWriter(channels.AccessLog.Reader, channels.AccessLogSettings.Reader,
            config.AccessLog, accessLog, TimeProvider.System, sp.GetRequiredService<ILogger<AccessLogWriter>>(),
            sp.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AccessLogWriter>());
        // The state journal (journal.path): registered before the state task, so it stops after
        // it and writes everything the state task recorded. The table's clock is read once per
        // batch and its policies draw from a seeded source: both go into the journal, so a replay
        // makes the same decisions.
        var clock = new StateClock(time);
        var seed = Random.Shared.Next();
        // Made whether journal.path is set or not: a reload may set it (or change or unset it).
        var journal = new Journal(channels.Journal.Writer, clock, channels.JournalFree.Reader);
        builder.Services.AddSingleton(journal); // for the dashboard's drop count
        builder.Services.AddSingleton(sp => new JournalWriter(channels.Journal.Reader, config.Journal, sp.GetRequiredService<ILogger<JournalWriter>>(), channels.Events.Writer, channels.JournalFree.Writer,
            channels.Events.Reader.Completion));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<JournalWriter>());
        builder.Services.AddSingleton(sp =>
        {
            var log = sp.GetRequiredService<ILogger<BackendTable>>();
            var table = new BackendTable(config, pools.Create, clock, change => LogChange(log, change), metrics, new Random(seed), log: log,
                drawSecret: config.Journal.On ? journal.DrawSecret : null); // off: a checkpoint carries the secret if a reload turns it on
            if (config.Journal.On) journal.Start(seed, config);
            return table;
        });
        builder.Services.AddSingleton(sp => new BackendState(channels, sp.GetRequiredService<BackendTable>(), time,
            sp.GetRequiredService<ILogger<BackendState>>(), clock, journal, journalOn: config.Journal.On));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BackendState>());
        // After the state task, which answers its first round in StartAsync (backends resolved before listening).
        builder.Services.AddHostedService(sp => new Discovery.DnsResolver(state, time, sp.GetRequiredService<ILogger<Discovery.DnsResolver>>(),
            options.Dns));
        // Made by the container, so the probe's own connection pool is disposed when the app stops.
        builder.Services.AddSingleton(_ => options.Probe ?? new HttpBackendProbe(time));
        builder.Services.AddSingleton(sp => new HealthChecker(channels.Ticks.Reader, state, sp.GetRequiredService<IBackendProbe>()));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HealthChecker>());
        // Probing starts once the listeners are bound: Kestrel starts after these services.
        builder.Services.AddSingleton(sp => new Ticker(channels.Ticks.Writer, channels.Periods.Reader, config.HealthCheck.Interval, time,
            sp.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Ticker>());
        builder.Services.AddHostedService(sp => new ConfigWatcher(configPath, config, state, channels.Periods.Writer, time,
            sp.GetRequiredService<ILogger<ConfigWatcher>>(), channels.AccessLogSettings.Writer, channels.TlsSettings.Writer,
            applyLimits: limits =>
            {
                connectionLimit.Resize(limits.MaxClientConnections);
                // Kestrel reads its limits from this options object for each new connection.
                sp.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits.RequestHeadersTimeout = limits.RequestHeadersTimeout;
            },
            keys: requestKeys));
        if (certificate is not null)
        {
            builder.Services.AddHostedService(sp => new CertificateWatcher(config.Tls!, config.ListenProtocols, certificate, time,
                sp.GetRequiredService<ILogger<CertificateWatcher>>(), channels.TlsSettings.Reader));
            metrics.ObserveCertificate(() => certificate.Current.Leaf.NotAfter, time);
        }
        builder.Services.AddHttpForwarder();
        builder.Services.AddSingleton<ProxyEndpoint>();
        builder.Services.AddSingleton<AdminEndpoints>();
        // The dashboard (GET / on the admin listener) reads the counters the stages keep.
        builder.Services.AddSingleton<PipelineView>();
        builder.Services.AddSingleton(sp => new DashboardLatency(metrics, TimeProvider.System));
        builder.Services.AddSingleton<Dashboard>();
        builder.Services.AddSingleton<BoundAddresses>();

        // /metrics: OpenTelemetry's Prometheus exporter, over this app's meter only.
        // No scrape cache: a scrape right after a request shows that request.
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("loadbalancer"))
            .WithMetrics(m => m.AddMeter(metrics.Meter.Name)
                .AddView(_ => new MetricStreamConfiguration { CardinalityLimit = LbMetrics.SeriesLimit(config) })
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));

        var app = builder.Build();
        var proxy = app.Services.GetRequiredService<ProxyEndpoint>();
        var admin = app.Services.GetRequiredService<AdminEndpoints>();
        var drain = app.Services.GetRequiredService<ShutdownDrain>();
        var dashboard = app.Services.GetRequiredService<Dashboard>();
        app.MapWhen(IsAdmin, adminApp =>
        {
            adminApp.UseOpenTelemetryPrometheusScrapingEndpoint(context => context.Request.Path == "/metrics");
            adminApp.Use(dashboard.HandleAsync);
            adminApp.Run(admin.HandleAsync);
        });
        app.Run(context =>
        {
            drain.CountInFlight(context.Response); // a stop that runs out says how many it cut
            drain.CloseWhenStopping(context.Response); // Connection: close once SIGTERM came
            return proxy.HandleAsync(context);
        });

        var lifetime = app.Lifetime;
        var startLog = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("LoadBalancer");
        var bound = app.Services.GetRequiredService<BoundAddresses>();
        lifetime.ApplicationStarted.Register(() =>
        {
            bound.Client = new Uri(Url(listeners.Client!, config.Listen.Scheme));
            bound.Admin = new Uri(Url(listeners.Admin!));
            Log.Started(startLog, Url(listeners.Client!, config.Listen.Scheme), Url(listeners.Admin!), config.Balancing,
                string.Join(", ", config.Backends.Select(b => b.Weight == 1 ? b.Url : $"{b.Url} (weight {b.Weight})")));
        });
        lifetime.ApplicationStopped.Register(metrics.Dispose);
        return app;
    }

    /// <summary>After start: where clients connect and where the admin listener is (real ports, also for port 0).</summary>
    public sealed class BoundAddresses
    {
        public Uri? Client { get; set; }
        public Uri? Admin { get; set; }
    }

    public static Uri ClientUri(this WebApplication app) => app.Services.GetRequiredService<BoundAddresses>().Client!;
    public static Uri AdminUri(this WebApplication app) => app.Services.GetRequiredService<BoundAddresses>().Admin!;

    static string Url(ListenOptions l, string scheme = "http") => $"{scheme}://{l.IPEndPoint}";

    static void LogChange(ILogger log, StateChange change)
    {
        if (change.Removed) Log.BackendRemoved(log, change.Backend.Url, change.Reason);
        else Log.BackendChanged(log, change.Backend.Url, change.State.Label(), change.Reason);
        if (change.NoneEligible) Log.NoEligibleBackends(log, change.Backend.Url, change.State.Label());
    }
}
