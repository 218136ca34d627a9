using System.Diagnostics;
using System.Diagnostics.Metrics;
using LoadBalancer.Configuration;

namespace LoadBalancer.Admin;

// The balancer's instruments (System.Diagnostics.Metrics, so dotnet-counters sees them too).
// /metrics exposes them in Prometheus text through OpenTelemetry's Prometheus exporter, which
// keeps counters as counters (loadbalancer_requests_total). Every per-backend series has the
// label backend="<url as in lb.json>".
// Who records what (instruments are thread-safe; nobody but the state task touches backend state):
//   - the state task (BackendTable): counters and the probe histogram, from the facts it applies;
//   - the request handlers: the request-duration histogram, from their own clock and the response
//     they sent; they read no backend state for it;
//   - the gauges (in flight, healthy, open connections) are observed at scrape time from the last
//     BackendGaugesSnapshot the state task published: immutable, swapped whole, so a removed
//     backend is simply absent from the next one and its series disappear.
public sealed class LbMetrics : IDisposable
{
    public const string MeterName = "LoadBalancer", RequestDurationName = "loadbalancer.request.duration"; // the dashboard listens to the latter

    readonly Meter _meter;
    public Meter Meter => _meter;
    readonly Counter<long> _requests;
    readonly Counter<long> _failures;
    readonly Histogram<double> _probeSeconds;
    readonly Histogram<double> _requestSeconds;
    readonly Counter<long> _grpcCalls;
    readonly Counter<long> _retries;
    readonly Counter<long> _ejections;
    readonly Histogram<double> _queueWaitSeconds;
    long _reloadsApplied, _reloadsRejected, _accessLogDropped, _queueFull, _queueTimeout, _retriesDenied;
    int _queueLength;
    BackendGaugesSnapshot _gauges = BackendGaugesSnapshot.Empty;

    static readonly string[] Codes = Enumerable.Range(0, 600).Select(i => i.ToString()).ToArray();
    static readonly string[] CodeClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"];

    /// <summary>The backend label of requests the balancer answered itself (503 no backend,
    /// 502/504 all attempts failed, 400/501/408 refusals).</summary>
    public const string NoBackend = "none";

    /// <param name="meterName">Tests give each in-process balancer its own meter name, so that
    /// their exporters do not see each other's instruments.</param>
    public LbMetrics(string meterName = MeterName)
    {
        _meter = new Meter(meterName);
        _requests = _meter.CreateCounter<long>("loadbalancer.requests", description: "Responses from backends, by backend and status code.");
        _failures = _meter.CreateCounter<long>("loadbalancer.backend.failures", description: "Forward attempts that failed without a usable response, by backend and reason.");
        _meter.CreateObservableGauge("loadbalancer.in_flight", () => Observe(static g => g.InFlight), description: "Requests in flight, by backend.");
        _meter.CreateObservableGauge("loadbalancer.backend.healthy", () => Observe(static g => g.Eligible ? 1 : 0), description: "1 when the backend is eligible for traffic, else 0.");
        _probeSeconds = _meter.CreateHistogram("loadbalancer.probe.latency", unit: "s", description: "Active health-check probe latency.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        // 1 ms to 30 s (requestTimeout's default), about three buckets a decade, as Prometheus users expect.
        _requestSeconds = _meter.CreateHistogram(RequestDurationName, unit: "s",
            description: "Request start to response end as the client sees it, by the backend that answered (none: the balancer itself) and status class.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _meter.CreateObservableGauge("loadbalancer.pool.connections.open", () => Observe(static g => g.OpenConnections), description: "Open pooled connections, by backend.");
        _grpcCalls = _meter.CreateCounter<long>("loadbalancer.grpc.calls",
            description: "gRPC calls by the grpc-status their client got (0 OK ... 16; other: not a gRPC code; none: the call ended without one) and the backend that answered (none: the balancer itself). The request histogram's code is HTTP's, which is 200 for a failed gRPC call.");
        _retries = _meter.CreateCounter<long>("loadbalancer.retries", description: "Forward attempts that were retries on another backend.");
        _ejections = _meter.CreateCounter<long>("loadbalancer.ejections", description: "Passive-health ejections, by backend.");
        // Observed rather than added to, so that both series exist at 0 from the first scrape and
        // increase() sees the first rejection (an Add before the exporter listens is lost).
        _meter.CreateObservableCounter("loadbalancer.config.reloads", () => (Measurement<long>[])
            [new(Volatile.Read(ref _reloadsApplied), Result(applied: true)), new(Volatile.Read(ref _reloadsRejected), Result(applied: false))],
            description: "Changes of lb.json, by result: applied or rejected.");
        // Admission (issue 12): the queue and the retry budget, every series from the first scrape.
        _meter.CreateObservableGauge("loadbalancer.queue.length", () => Volatile.Read(ref _queueLength),
            description: "Requests waiting in the queue for a backend under its limit.");
        _queueWaitSeconds = _meter.CreateHistogram("loadbalancer.queue.wait", unit: "s",
            description: "Time requests waited in the queue, however they left it (a slot, queue timeout, client gone).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _meter.CreateObservableCounter("loadbalancer.queue.rejected", () => (Measurement<long>[])
            [new(Volatile.Read(ref _queueFull), Reason("full")), new(Volatile.Read(ref _queueTimeout), Reason("timeout"))],
            description: "Requests the queue refused (503): it was full, or they waited queue.timeout.");
        _meter.CreateObservableCounter("loadbalancer.retries.denied", () => Volatile.Read(ref _retriesDenied),
            description: "Retries the retry budget refused.");
        _meter.CreateObservableCounter("loadbalancer.access_log.dropped", () => Volatile.Read(ref _accessLogDropped),
            description: "Access-log lines dropped because the writer fell behind (its channel was full).");
    }

    /// <summary>How many series one metric may have. OpenTelemetry's default is 2,000 per metric,
    /// past which new label sets go to one overflow series: with a few hundred backends and a few
    /// status codes each, loadbalancer_requests would lose its backend label. So the cap is sized
    /// from lb.json at startup: 16 series per backend the file can give (a discovered entry counts
    /// as its 64 addresses at most). OpenTelemetry allocates the cap up front (about 100 bytes a
    /// series per metric), so it is not simply set high. A reload that adds backends past it keeps
    /// the startup cap: the extra series go to the overflow series until a restart.</summary>
    public static int SeriesLimit(LbConfig config)
    {
        long backends = config.Backends.Sum(b => b.Discover ? Discovery.DnsResolver.MaxAddresses : 1);
        return (int)Math.Clamp(backends * 16, 2000, 1_000_000);
    }

    static KeyValuePair<string, object?> Backend(string url) => new("backend", url);
    static KeyValuePair<string, object?> Reason(string reason) => new("reason", reason);
    static KeyValuePair<string, object?> Result(bool applied) => new("result", applied ? "applied" : "rejected");

    // A discovered backend's series also carry address="ip:port" (its URL is its host's, shared by every address).
    static TagList Tags(string backend, string? address)
    {
        var tags = new TagList { Backend(backend) };
        if (address is not null) tags.Add("address", address);
        return tags;
    }

    public void Response(string backend, int status, string? address = null)
    {
        var tags = Tags(backend, address);
        tags.Add("code", (uint)status < Codes.Length ? Codes[status] : status.ToString());
        _requests.Add(1, tags);
    }

    public void Failure(string backend, string reason, string? address = null)
    {
        var tags = Tags(backend, address);
        tags.Add("reason", reason);
        _failures.Add(1, tags);
    }

    public void Probe(string backend, TimeSpan latency, string? address = null) => _probeSeconds.Record(latency.TotalSeconds, Tags(backend, address));
    public void Retry() => _retries.Add(1);
    public void Ejection(string backend, string? address = null) => _ejections.Add(1, Tags(backend, address));
    /// <summary>From the state task: the queue refused a request (full: at once; else its time ran out).</summary>
    public void QueueRejected(bool full) => Interlocked.Increment(ref full ? ref _queueFull : ref _queueTimeout);

    /// <summary>From the state task: a request left the queue after waiting this long.</summary>
    public void QueueWait(TimeSpan waited) => _queueWaitSeconds.Record(waited.TotalSeconds);

    /// <summary>From the state task: the retry budget refused a retry.</summary>
    public void RetryDenied() => Interlocked.Increment(ref _retriesDenied);

    /// <summary>From the state task, once a loop turn: how many wait in the queue.</summary>
    public int QueueLength { get => Volatile.Read(ref _queueLength); set => Volatile.Write(ref _queueLength, value); }

    public void ConfigReload(bool applied) => Interlocked.Increment(ref applied ? ref _reloadsApplied : ref _reloadsRejected);

    /// <summary>From a request handler: its access-log record did not fit into the channel.</summary>
    public void AccessLogDropped() => Interlocked.Increment(ref _accessLogDropped);

    /// <summary>Access-log lines dropped since startup.</summary>
    public long AccessLogDroppedTotal => Volatile.Read(ref _accessLogDropped);

    /// <summary>From a request handler, once per client request, any thread: backend is the one
    /// whose response the client got, null when the balancer answered itself. Allocation-free:
    /// two tags go by value, the label strings already exist.</summary>
    public void Request(string? backend, int status, TimeSpan elapsed, string? address = null)
    {
        if (address is null)
        {
            _requestSeconds.Record(elapsed.TotalSeconds, Backend(backend ?? NoBackend), new("code", CodeClass(status)));
            return;
        }
        var tags = Tags(backend ?? NoBackend, address);
        tags.Add("code", CodeClass(status));
        _requestSeconds.Record(elapsed.TotalSeconds, tags);
    }

    /// <summary>From a request handler, once per gRPC call (content-type application/grpc...):
    /// grpcStatus as GrpcErrors.FinalStatus gives it, one of a fixed set of strings.</summary>
    public void GrpcCall(string? backend, string grpcStatus, string? address = null)
    {
        if (address is null)
        {
            _grpcCalls.Add(1, Backend(backend ?? NoBackend), new("grpc_status", grpcStatus));
            return;
        }
        var tags = Tags(backend ?? NoBackend, address);
        tags.Add("grpc_status", grpcStatus);
        _grpcCalls.Add(1, tags);
    }

    static string CodeClass(int status) => status is >= 100 and < 600 ? CodeClasses[status / 100 - 1] : "other";

    /// <summary>From the state task: every backend's gauges as they are now. Replaces the last
    /// snapshot whole; a snapshot never changes.</summary>
    public void Publish(BackendGaugesSnapshot gauges) => Volatile.Write(ref _gauges, gauges);

    /// <summary>The snapshot last published (for the state task, to make the next one from it).</summary>
    public BackendGaugesSnapshot Published => Volatile.Read(ref _gauges);

    // At scrape time, on the exporter's thread: only the published snapshot is read.
    IEnumerable<Measurement<long>> Observe(Func<BackendGauges, long> value)
    {
        var gauges = Volatile.Read(ref _gauges);
        var measurements = new Measurement<long>[gauges.Count];
        var i = 0;
        foreach (var g in gauges) measurements[i++] = new(value(g), Tags(g.Backend, g.Address));
        return measurements;
    }

    /// <summary>With an https listen: loadbalancer_tls_certificate_expiry_seconds, the time left
    /// until the served certificate's NotAfter (negative once it has expired), read at scrape time.</summary>
    public void ObserveCertificate(Func<DateTime> notAfter, TimeProvider time) =>
        _meter.CreateObservableGauge("loadbalancer.tls.certificate.expiry", () => (notAfter().ToUniversalTime() - time.GetUtcNow().UtcDateTime).TotalSeconds,
            unit: "s", description: "Seconds until the served TLS certificate expires.");

    public void Dispose() => _meter.Dispose();
}

/// <summary>One backend's gauges at one moment, as the state task published them.</summary>
public readonly record struct BackendGauges(string Backend, int InFlight, int OpenConnections, bool Eligible, string? Address = null);
