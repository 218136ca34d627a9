using System.Net;
using LoadBalancer.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Pipeline;

// Everything that crosses a channel, in one place. Immutable, so safe to share between tasks.
//
//   ticks              Ticker        -> HealthChecker    Tick
//   events             many writers  -> BackendState     StateEvent: a "tell", no answer expected
//   requests           many writers  -> BackendState     StateRequest: an "ask", the reply slot travels inside
//   periods            ConfigWatcher -> Ticker           TimeSpan: a new probe interval after a reload
//   accesslog          handlers      -> AccessLogWriter  AccessRecord: one per request, TryWrite only
//   accesslogsettings  ConfigWatcher -> AccessLogWriter  AccessLogConfig: a new accessLog after a reload
//   tlssettings        ConfigWatcher -> CertificateWatcher  TlsSettings: a new tls or listenProtocols after a reload, its pair loaded
//   journal            BackendState  -> JournalWriter    JournalBatch: every message it applied (JournalRecord), TryWrite only
//   journalfree        JournalWriter -> BackendState     JournalBatch: written and emptied, to fill again (a free list)

public readonly record struct Tick(DateTimeOffset At);

/// <summary>An https listen's new tls.certificate, tls.key or listenProtocols after a reload: the
/// files to watch from now on, and the pair the config watcher loaded from them (a pair that does
/// not load rejects the reload instead, so this one serves).</summary>
public sealed record TlsSettings(TlsConfig Tls, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols Protocols, Hosting.CertificatePair Pair);

// ---- events: one-way messages to the state task -------------------------------------------

public abstract record StateEvent;

/// <summary>One backend's answer to one probe. Error is null when the probe got a status.</summary>
public sealed record ProbeResult(BackendRoute Backend, DateTimeOffset At, int? Status, TimeSpan Latency, string? Error)
    : StateEvent
{
    public bool Passed => Error is null && Status is >= 200 and < 300;
}

/// <summary>A forward attempt ended: releases the in-flight slot that its pick took.</summary>
public sealed record RequestOutcome(BackendRoute Backend, Outcome Kind, int Status) : StateEvent;

/// <summary>Pooled connections opened or closed: the net change is in Backend.Connections (one queued per route at most).</summary>
public sealed record ConnectionsChanged(BackendRoute Backend) : StateEvent;

/// <summary>A queued pick's client went away (its RequestAborted fired): it leaves the queue
/// without taking a slot. Written by the abort's callback; ignored when the waiter was answered first.</summary>
public sealed record PickCancelled(Waiter Waiter) : StateEvent;

/// <summary>The state task's own timer: its next deadline is due (an ejection ends, a queued pick times out).</summary>
public sealed record Wake : StateEvent
{
    public static readonly Wake Instance = new();
}

/// <summary>The JournalWriter's file is full: the state task reseeds and records a checkpoint, with
/// which the writer begins the next file (JournalEntry.Checkpoint).</summary>
public sealed record CheckpointWanted : StateEvent
{
    public static readonly CheckpointWanted Instance = new();
}

/// <summary>The DnsResolver's answer for one discovered backend (its Key, as in lb.json):
/// the addresses ("ip:port", sorted, capped) or, when the lookup failed or came back empty,
/// null and the Error: the last addresses stay, marked stale.</summary>
public sealed record MembershipChanged(string Backend, string[]? Addresses, string? Error) : StateEvent;

/// <summary>lb.json changed and the new file is valid.</summary>
public sealed record ConfigChanged(LbConfig Config) : StateEvent;

/// <summary>lb.json changed and the new file was rejected (the watcher has logged it): Problem is
/// its one line, for /status's config.lastError. The running configuration stays.</summary>
public sealed record ConfigRejected(string Problem) : StateEvent;

// ---- requests: the message carries its reply, as in Pike's balancer -----------------------
// Replies run their continuations asynchronously, so the asker never resumes on the state
// task's thread.

public abstract record StateRequest;

/// <summary>Give me a backend that is not in Exclude (the ones a retry already tried).
/// Asked once per request, so its reply slot is pooled (see Reply.cs) rather than a new TCS.
/// When every eligible backend is at its limit it waits in the queue; Aborted (the client's
/// RequestAborted) takes it out again. Answered exactly once either way.
/// Key: the request's hash key and affinity cookie, when it has them.</summary>
public sealed record PickRequest(BackendRoute[]? Exclude, Reply<Pick> Reply, CancellationToken Aborted = default, RequestKey Key = default) : StateRequest;

/// <summary>What of a request a pick may use: Hash, the hash of its hashKey (consistent-hash;
/// null: no key, round-robin), and Affinity, its affinity cookie's value (null: none).</summary>
public readonly record struct RequestKey(ulong? Hash, string? Affinity);

/// <summary>Which discovered backends to resolve, and how.</summary>
public sealed record DiscoveryPlanRequest(TaskCompletionSource<DiscoveryPlan> Reply) : StateRequest;

/// <summary>Which backends to probe this round, and how.</summary>
public sealed record ProbePlanRequest(TaskCompletionSource<ProbePlan> Reply) : StateRequest;

/// <summary>A snapshot for /status and /metrics.</summary>
public sealed record StatusRequest(TaskCompletionSource<StatusSnapshot> Reply) : StateRequest;

/// <summary>GET /explain: a dry run of the next pick (no slot taken, no cursor moved).</summary>
public sealed record ExplainRequest(TaskCompletionSource<Explanation> Reply) : StateRequest;

/// <summary>GET /events?since=N: the kept state changes after Since.</summary>
public sealed record EventsRequest(long Since, TaskCompletionSource<EventsPage> Reply) : StateRequest;

/// <summary>POST /backends/drain (Drain true) or /backends/undrain. Authorization is the header
/// as sent and Loopback whether the peer is; the state task checks them against the adminToken
/// in force (see AdminAuth) before it touches anything.</summary>
public sealed record DrainRequest(string Url, bool Drain, string? Authorization, bool Loopback, TaskCompletionSource<DrainAnswer> Reply)
    : StateRequest;

public enum DrainAnswer { Done, UnknownBackend, Unauthorized, Forbidden }

// ---- the access log: handlers -> AccessLogWriter --------------------------------------------

/// <summary>One client request, as the access log shows it. Built by the handler when the request
/// ends, only while the log is on; formatted by the AccessLogWriter, off the request path.
/// Time is when the request started (UTC); Backend is the one whose response the client got
/// (null when the balancer answered itself); Status 499 means the client left before any response.</summary>
public sealed record AccessRecord(
    DateTimeOffset Time, IPAddress? Client, string Method, string Target, string Protocol, int Status,
    long BytesIn, long BytesOut, double DurationMs, string RequestId, string? Backend,
    AttemptRecord[] Attempts, double QueueMs, Termination Termination, string? Referer, string? UserAgent);

/// <summary>One forward attempt of a request: to which backend, how it ended, how long it took.</summary>
public readonly record struct AttemptRecord(string Backend, Outcome Outcome, double DurationMs);

/// <summary>Who ended a request (the access log's termination): it ran its course, the client
/// left or stalled, the backend failed it, a timeout cut it, no backend could take it, or (issue 9)
/// the queue or the retry budget refused it.</summary>
public enum Termination { Ok, Client, Backend, Timeout, NoBackend, Queue, Budget }

// ---- what replies carry ---------------------------------------------------------------------

/// <summary>Backend is null when the pick was refused, and Refused says why. Settings are the
/// forwarding rules in force. Waited: how long the pick waited in the queue (zero when it did not).
/// SetAffinity: with affinity on, the cookie value to set (the request's cookie named another
/// backend, or none); null when its cookie already names this backend.</summary>
public readonly record struct Pick(BackendRoute? Backend, ForwardingSettings Settings, Refusal Refused = Refusal.None, TimeSpan Waited = default,
    string? SetAffinity = null);

/// <summary>Why a pick got no backend: none eligible; the queue was full; it waited queue.timeout;
/// its client left while it waited; the retry budget refused a retry; the state task stopped.</summary>
public enum Refusal { None, NoBackend, QueueFull, QueueTimeout, Cancelled, Budget, Stopping }

/// <summary>The forwarding rules in force. RequestTimeout bounds only the wait for response
/// headers (the handler's own deadline); after them YARP's ActivityTimeout bounds the gaps:
/// StreamIdleTimeout on an HTTP exchange, TunnelIdleTimeout on an upgraded one (WebSocket).
/// For(protocol) is the config per backend protocol: HTTP/1.1, or HTTP/2 exactly (h2c by prior
/// knowledge, h2 by ALPN; "exact" so that gRPC never silently falls back to HTTP/1.1).</summary>
public sealed record ForwardingSettings(int Retries, TimeSpan RequestTimeout, TimeSpan StreamIdleTimeout, TimeSpan TunnelIdleTimeout)
{
    public ForwarderRequestConfig RequestConfig { get; } = Config(StreamIdleTimeout, http2: false);
    public ForwarderRequestConfig TunnelConfig { get; } = Config(TunnelIdleTimeout, http2: false);
    public ForwarderRequestConfig Http2RequestConfig { get; } = Config(StreamIdleTimeout, http2: true);
    public ForwarderRequestConfig Http2TunnelConfig { get; } = Config(TunnelIdleTimeout, http2: true);

    public ForwarderRequestConfig For(BackendProtocol protocol, bool upgrade) => protocol == BackendProtocol.Http1
        ? upgrade ? TunnelConfig : RequestConfig
        : upgrade ? Http2TunnelConfig : Http2RequestConfig;

    static ForwarderRequestConfig Config(TimeSpan activityTimeout, bool http2) => new()
    {
        ActivityTimeout = activityTimeout,
        Version = http2 ? System.Net.HttpVersion.Version20 : System.Net.HttpVersion.Version11,
        VersionPolicy = http2 ? HttpVersionPolicy.RequestVersionExact : HttpVersionPolicy.RequestVersionOrLower,
    };
}

public sealed record ProbePlan(BackendRoute[] Targets, HealthCheckConfig Settings);

/// <summary>The backends with discover "dns" (as in lb.json) and discovery.* in force.</summary>
public sealed record DiscoveryPlan(BackendConfig[] Targets, DiscoveryConfig Settings);

public sealed record StatusSnapshot(string Balancing, BackendStatus[] Backends, ConfigStatus Config)
{
    /// <summary>Picks waiting in the queue for a backend under its limit.</summary>
    public int QueueLength { get; init; }
}

/// <summary>LastChange: the backend's last state change (null when none yet); EjectedUntil: set while ejected.</summary>
public sealed record BackendStatus(
    string Url, int Weight, BackendHealth State, int InFlight, long Requests, long Failures,
    ProbeResult? LastProbe, int OpenConnections, StateChange? LastChange, DateTimeOffset? EjectedUntil)
{
    /// <summary>Weight as the policies use it now: lower while slow start ramps it up.</summary>
    public double EffectiveWeight { get; init; } = Weight;

    /// <summary>Its in-flight limit (0: none).</summary>
    public int MaxInFlight { get; init; }

    /// <summary>A discovered backend's "ip:port" (null: from lb.json as it is).</summary>
    public string? Address { get; init; }

    /// <summary>A discovered backend's last lookup: stale when it failed or came back empty.</summary>
    public DiscoveryStatus? Discovery { get; init; }
}

/// <summary>Stale: the last lookup failed (Error says how) and the addresses are the last good ones.</summary>
public sealed record DiscoveryStatus(bool Stale, string? Error);

/// <summary>The configuration in force: when it was applied, how many have been (1 at startup,
/// +1 per applied reload), and the last rejected file's one line, cleared when a later file applies.</summary>
public sealed record ConfigStatus(DateTimeOffset LoadedAt, int Generation, string? LastError);

public enum BackendHealth { Unknown, Healthy, Unhealthy, Ejected, Draining }

/// <summary>How one forward attempt ended, as the state task counts it.</summary>
public enum Outcome
{
    /// <summary>The backend answered with a status that is not 502/503/504.</summary>
    Response,
    /// <summary>The backend answered 502, 503 or 504: passed through, but counted as a failure.</summary>
    BadGatewayStatus,
    ConnectRefused,
    ConnectTimeout,
    TlsFailure,
    /// <summary>No response headers within requestTimeout.</summary>
    ResponseTimeout,
    /// <summary>The connection broke (or the response was malformed) before response headers.</summary>
    ResetBeforeHeaders,
    /// <summary>The connection broke while the response body was streaming.</summary>
    ResetAfterHeaders,
    /// <summary>The client went away or cancelled: never the backend's fault.</summary>
    ClientAbort,
    /// <summary>The client stopped sending its request body (the attempt timed out while the
    /// body was still incomplete): the client's doing, never the backend's.</summary>
    ClientStall,
    /// <summary>After response headers, no bytes either way for streamIdleTimeout: the exchange
    /// was cut. An idle SSE stream or long poll, not a failure.</summary>
    StreamIdle,
    /// <summary>An upgraded connection (WebSocket) idle for tunnelIdleTimeout was closed.</summary>
    TunnelIdle,
    /// <summary>The balancer could not build the request for the backend (a target or method the
    /// forwarder refuses): nothing was sent, the balancer answered the client itself.</summary>
    NotForwarded,
}

/// <summary>Whose doing an attempt's end was. Only Backend counts against the backend.</summary>
public enum Side { None, Backend, Client, Balancer }

public static class OutcomeExtensions
{
    /// <summary>Whose doing it was: the backend's own behaviour is the only thing that counts
    /// against it (contract, "What counts against a backend"). An exhaustive switch: a new
    /// Outcome without a side does not compile (CS8509 is an error here; only values outside
    /// the enum, CS8524, fall to the throw).</summary>
#pragma warning disable CS8524
    public static Side Side(this Outcome o) => o switch
    {
        Outcome.Response or Outcome.StreamIdle or Outcome.TunnelIdle => Pipeline.Side.None,
        Outcome.BadGatewayStatus or Outcome.ConnectRefused or Outcome.ConnectTimeout or Outcome.TlsFailure
            or Outcome.ResponseTimeout or Outcome.ResetBeforeHeaders or Outcome.ResetAfterHeaders => Pipeline.Side.Backend,
        Outcome.ClientAbort or Outcome.ClientStall => Pipeline.Side.Client,
        Outcome.NotForwarded => Pipeline.Side.Balancer,
    };
#pragma warning restore CS8524

    /// <summary>Does this outcome count against the backend (passive health)?</summary>
    public static bool IsBackendFailure(this Outcome o) => o.Side() == Pipeline.Side.Backend;

    /// <summary>Did the backend answer (response headers came), whatever happened after?</summary>
    public static bool HasResponse(this Outcome o) =>
        o is Outcome.Response or Outcome.BadGatewayStatus or Outcome.StreamIdle or Outcome.TunnelIdle;

    /// <summary>Nothing reached the backend: safe to retry any method.</summary>
    public static bool NothingSent(this Outcome o) => o is Outcome.ConnectRefused or Outcome.ConnectTimeout or Outcome.TlsFailure;

    public static string Describe(this Outcome o) => o switch
    {
        Outcome.Response => "response",
        Outcome.BadGatewayStatus => "502/503/504 status",
        Outcome.ConnectRefused => "connection refused",
        Outcome.ConnectTimeout => "connect timeout",
        Outcome.TlsFailure => "TLS failure",
        Outcome.ResponseTimeout => "response timeout",
        Outcome.ResetBeforeHeaders => "connection reset",
        Outcome.ResetAfterHeaders => "reset after headers",
        Outcome.ClientAbort => "client abort",
        Outcome.ClientStall => "client stalled its request body",
        Outcome.StreamIdle => "stream idle timeout",
        Outcome.TunnelIdle => "tunnel idle timeout",
        Outcome.NotForwarded => "not forwardable",
        _ => o.ToString(),
    };

    public static string Label(this BackendHealth h) => h switch
    {
        BackendHealth.Unknown => "unknown",
        BackendHealth.Healthy => "healthy",
        BackendHealth.Unhealthy => "unhealthy",
        BackendHealth.Ejected => "ejected",
        _ => "draining",
    };
}
