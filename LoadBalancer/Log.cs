using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer;

// Every log line the balancer writes, with stable event ids. Message templates, not
// interpolation: structured loggers keep the fields. Nothing per request at Information.
public static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "LoadBalancer listening on {Listen}, admin on {Admin}, balancing {Balancing}, backends {Backends}")]
    public static partial void Started(ILogger logger, string listen, string admin, string balancing, string backends);

    [LoggerMessage(5, LogLevel.Information, "LoadBalancer stopped, exit code {ExitCode}")]
    public static partial void Stopped(ILogger logger, int exitCode);

    [LoggerMessage(2, LogLevel.Information, "Backend {Backend} is now {State}: {Reason}")]
    public static partial void BackendChanged(ILogger logger, string backend, string state, string reason);

    [LoggerMessage(3, LogLevel.Information, "Backend {Backend} removed: {Reason}")]
    public static partial void BackendRemoved(ILogger logger, string backend, string reason);

    [LoggerMessage(4, LogLevel.Warning, "Backend {Backend} was the last eligible backend and is now {State}: clients get 503 until a backend recovers")]
    public static partial void NoEligibleBackends(ILogger logger, string backend, string state);

    /// <summary>One probe, at Debug: its status, or why it failed (a probe has one or the other).</summary>
    public static void ProbeResult(ILogger logger, string backend, int? status, double latencyMs, string? error)
    {
        if (error is null) ProbeAnswered(logger, backend, status, latencyMs);
        else ProbeFailed(logger, backend, error, latencyMs);
    }

    [LoggerMessage(10, LogLevel.Debug, "Probe {Backend}: status {Status}, {LatencyMs:0.0} ms")]
    static partial void ProbeAnswered(ILogger logger, string backend, int? status, double latencyMs);

    [LoggerMessage(13, LogLevel.Debug, "Probe {Backend}: {Error}, {LatencyMs:0.0} ms")]
    static partial void ProbeFailed(ILogger logger, string backend, string error, double latencyMs);

    [LoggerMessage(20, LogLevel.Information, "Configuration reloaded: {Backends} backends, balancing {Balancing}; changed: {Changes}")]
    public static partial void ReloadApplied(ILogger logger, int backends, string balancing, string changes);

    [LoggerMessage(21, LogLevel.Error, "Configuration change rejected, the running configuration stays: {Problem}")]
    public static partial void ReloadRejected(ILogger logger, string problem);

    [LoggerMessage(23, LogLevel.Warning, "Configuration: {Problem}")]
    public static partial void ConfigWarning(ILogger logger, string problem);

    [LoggerMessage(22, LogLevel.Warning, "listen and admin changes take effect only after a restart; still listening on {Listen}, admin on {Admin}")]
    public static partial void ListenChangeNeedsRestart(ILogger logger, string listen, string admin);

    // 24: retired ("limits.* changes take effect only after a restart"): limits apply on reload now.

    [LoggerMessage(30, LogLevel.Error, "The state task failed to handle a {Message}; the loop goes on")]
    public static partial void MessageFailed(ILogger logger, string message, Exception exception);

    [LoggerMessage(31, LogLevel.Critical, "The state task died: no request can be answered, stopping")]
    public static partial void StateTaskDied(ILogger logger, Exception exception);

    // Replaces event 40, which said every open connection got the grace, busy ones included.
    [LoggerMessage(43, LogLevel.Information, "Stopping: no longer listening; {Open} client connections open, {InFlight} requests in flight; in-flight requests may finish and idle connections get up to {GraceSeconds} s for one more request, each answered with Connection: close")]
    public static partial void StoppedListening(ILogger logger, int open, int inFlight, double graceSeconds);

    [LoggerMessage(41, LogLevel.Information, "Stopping: {Open} client connections still open after the {GraceSeconds} s grace; idle ones are closed now, in-flight requests may finish")]
    public static partial void GraceOver(ILogger logger, int open, double graceSeconds);

    [LoggerMessage(42, LogLevel.Warning, "Stopping: the {TimeoutSeconds} s drain ran out; {InFlight} requests still in flight were cut")]
    public static partial void DrainRanOut(ILogger logger, double timeoutSeconds, int inFlight);

    // 60-69: the edge (TLS listener, HTTP/2, backend protocols).
    [LoggerMessage(60, LogLevel.Information, "TLS certificate loaded: {Subject}, serial {Serial}, valid until {NotAfter:u}; new handshakes get it")]
    public static partial void CertificateLoaded(ILogger logger, string subject, string serial, DateTime notAfter);

    [LoggerMessage(61, LogLevel.Error, "TLS certificate change rejected, still serving serial {Serial}: {Problem}")]
    public static partial void CertificateRejected(ILogger logger, string problem, string serial);

    [LoggerMessage(62, LogLevel.Warning, "listenProtocols on an http:// listen changes only with a restart (a cleartext listener speaks HTTP/1.1 or h2c, chosen when it binds); still {Running}")]
    public static partial void EdgeChangeNeedsRestart(ILogger logger, string running);

    // ---- requests and the access log: 70-79 ----

    // Replaces event 11, which did not name the request.
    [LoggerMessage(70, LogLevel.Debug, "Forward to {Backend} failed: {Outcome} ({Error}: {Message}); request {RequestId}")]
    public static partial void RequestForwardFailed(ILogger logger, string backend, string outcome, ForwarderError error, string? message, string requestId);

    // Replaces event 12, which did not name the request.
    [LoggerMessage(71, LogLevel.Information, "Closed an idle exchange with {Backend} ({Reason}) for {Path}; not counted against the backend; request {RequestId}")]
    public static partial void RequestIdleClosed(ILogger logger, string backend, string reason, string path, string requestId);

    [LoggerMessage(72, LogLevel.Information, "Access log: writing {Format} lines to {Path}")]
    public static partial void AccessLogOpened(ILogger logger, string format, string path);

    [LoggerMessage(73, LogLevel.Information, "Access log: {Path} was moved away or replaced (log rotation); reopened it")]
    public static partial void AccessLogReopened(ILogger logger, string path);

    [LoggerMessage(74, LogLevel.Error, "Access log: cannot open {Path}: {Problem}; no lines are written until it can be opened (tried again every second)")]
    public static partial void AccessLogCannotOpen(ILogger logger, string path, string problem);

    [LoggerMessage(75, LogLevel.Error, "Access log: writing to {Path} failed: {Problem}; those lines are lost")]
    public static partial void AccessLogWriteFailed(ILogger logger, string path, string problem);

    [LoggerMessage(76, LogLevel.Information, "Access log: off")]
    public static partial void AccessLogOff(ILogger logger);

    // At most once a minute.
    [LoggerMessage(77, LogLevel.Warning, "Access log: {Dropped} lines dropped, {Total} since startup: the writer fell behind (loadbalancer_access_log_dropped_total)")]
    public static partial void AccessLogDropped(ILogger logger, long dropped, long total);

    [LoggerMessage(78, LogLevel.Error, "Access log: the line of request {RequestId} could not be formatted; it is lost, the log goes on")]
    public static partial void AccessLogFormatFailed(ILogger logger, string requestId, Exception exception);

    [LoggerMessage(79, LogLevel.Information, "Access log: {Path} was truncated (log rotation by copy); writing on at its new end")]
    public static partial void AccessLogTruncated(ILogger logger, string path);

    // ---- admission (issue 12): 80-89 ----

    [LoggerMessage(80, LogLevel.Information, "Backend {Backend} warms up: its effective weight rises from 10% to 100% over {SlowStart} (slowStart)")]
    public static partial void SlowStartBegins(ILogger logger, string backend, string slowStart);

    [LoggerMessage(81, LogLevel.Warning, "Backend {Backend} not ejected after {Failures} failed requests: {Ejected} of {Total} backends are ejected already (passiveHealth.maxEjectionPercent {Percent}); it stays in")]
    public static partial void EjectionRefused(ILogger logger, string backend, int failures, int ejected, int total, int percent);

    // At most once a second.
    [LoggerMessage(82, LogLevel.Warning, "Retry budget spent: {Denied} retries refused since the last line; {Granted} granted for {FirstAttempts} first attempts in the last 10 s (retryBudget.percent {Percent}, minPerSecond {MinPerSecond}) (loadbalancer_retries_denied_total)")]
    public static partial void RetriesDenied(ILogger logger, long denied, long granted, long firstAttempts, int percent, int minPerSecond);

    // ---- explain, events, drain, journal: 90-99 ----

    [LoggerMessage(90, LogLevel.Information, "Journal: recording every state-task message to {Path} (rotated once at {MaxMB} MB); replay it with: LoadBalancer replay {Path}")]
    public static partial void JournalOpened(ILogger logger, string path, long maxMB);

    [LoggerMessage(91, LogLevel.Error, "Journal: cannot open {Path}: {Problem}; the journal is off")]
    public static partial void JournalCannotOpen(ILogger logger, string path, string problem);

    [LoggerMessage(92, LogLevel.Error, "Journal: writing to {Path} failed: {Problem}; those records are lost and a replay will diverge there")]
    public static partial void JournalWriteFailed(ILogger logger, string path, string problem);

    [LoggerMessage(93, LogLevel.Information, "Journal: {Path} reached its size and was moved aside (.1, replacing the older one); the new file begins with a checkpoint and replays alone")]
    public static partial void JournalRotated(ILogger logger, string path);

    [LoggerMessage(94, LogLevel.Warning, "Journal: {Dropped} records dropped (the writer fell behind), {Total} since startup; a replay stops at the gap")]
    public static partial void JournalDropped(ILogger logger, long dropped, long total);

    [LoggerMessage(95, LogLevel.Warning, "Admin: {Method} {Path} from {Peer} refused: {Why}")]
    public static partial void AdminRefused(ILogger logger, string method, string path, string peer, string why);

    // 25: retired ("journal.* changes take effect only after a restart"): journal.* applies on reload now.

    // DNS discovery (Discovery/DnsResolver.cs).
    [LoggerMessage(110, LogLevel.Debug, "DNS {Host}: {Count} addresses, next lookup in {NextSeconds} s")]
    public static partial void DnsResolved(ILogger logger, string host, int count, double nextSeconds);

    [LoggerMessage(111, LogLevel.Warning, "DNS lookup of {Host} failed: {Error}; its last addresses stay, marked stale")]
    public static partial void DnsFailed(ILogger logger, string host, string error);

    [LoggerMessage(112, LogLevel.Information, "DNS lookup of {Host} answers again: {Count} addresses")]
    public static partial void DnsRecovered(ILogger logger, string host, int count);

    [LoggerMessage(113, LogLevel.Warning, "DNS answer for {Host} has {Count} addresses; only the first {Max} (sorted) become backends")]
    public static partial void DnsCapped(ILogger logger, string host, int count, int max);

    [LoggerMessage(114, LogLevel.Error, "DNS discovery round failed; it tries again on the next tick")]
    public static partial void DnsRoundFailed(ILogger logger, Exception exception);
}
