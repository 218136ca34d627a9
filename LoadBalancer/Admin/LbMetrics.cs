using System.Diagnostics.Metrics;

namespace LoadBalancer.Admin;

// The balancer's instruments (System.Diagnostics.Metrics, so dotnet-counters sees them too).
// /metrics exposes them in Prometheus text through OpenTelemetry's Prometheus exporter, which
// keeps counters as counters (loadbalancer_requests_total). Every per-backend series has the
// label backend="<url as in lb.json>".
// Recorded only by the state task (BackendTable): handlers never touch these.
public sealed class LbMetrics : IDisposable
{
    public const string MeterName = "LoadBalancer";

    readonly Meter _meter;
    public Meter Meter => _meter;
    readonly Counter<long> _requests;
    readonly Counter<long> _failures;
    readonly UpDownCounter<long> _inFlight;
    readonly UpDownCounter<long> _healthy;
    readonly Histogram<double> _probeSeconds;
    readonly UpDownCounter<long> _connections;
    readonly Counter<long> _retries;
    readonly Counter<long> _ejections;

    static readonly string[] Codes = Enumerable.Range(0, 600).Select(i => i.ToString()).ToArray();

    /// <param name="meterName">Tests give each in-process balancer its own meter name, so that
    /// their exporters do not see each other's instruments.</param>
    public LbMetrics(string meterName = MeterName)
    {
        _meter = new Meter(meterName);
        _requests = _meter.CreateCounter<long>("loadbalancer.requests", description: "Responses from backends, by backend and status code.");
        _failures = _meter.CreateCounter<long>("loadbalancer.backend.failures", description: "Forward attempts that failed without a usable response, by backend and reason.");
        _inFlight = _meter.CreateUpDownCounter<long>("loadbalancer.in_flight", description: "Requests in flight, by backend.");
        _healthy = _meter.CreateUpDownCounter<long>("loadbalancer.backend.healthy", description: "1 when the backend is eligible for traffic, else 0.");
        _probeSeconds = _meter.CreateHistogram("loadbalancer.probe.latency", unit: "s", description: "Active health-check probe latency.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _connections = _meter.CreateUpDownCounter<long>("loadbalancer.pool.connections.open", description: "Open pooled connections, by backend.");
        _retries = _meter.CreateCounter<long>("loadbalancer.retries", description: "Forward attempts that were retries on another backend.");
        _ejections = _meter.CreateCounter<long>("loadbalancer.ejections", description: "Passive-health ejections, by backend.");
    }

    static KeyValuePair<string, object?> Backend(string url) => new("backend", url);

    public void Response(string backend, int status) =>
        _requests.Add(1, Backend(backend), new("code", (uint)status < Codes.Length ? Codes[status] : status.ToString()));

    public void Failure(string backend, string reason) => _failures.Add(1, Backend(backend), new("reason", reason));
    public void InFlight(string backend, int delta) => _inFlight.Add(delta, Backend(backend));
    public void Eligible(string backend, int delta) => _healthy.Add(delta, Backend(backend));
    public void Probe(string backend, TimeSpan latency) => _probeSeconds.Record(latency.TotalSeconds, Backend(backend));
    public void Connections(string backend, int delta) => _connections.Add(delta, Backend(backend));
    public void Retry() => _retries.Add(1);
    public void Ejection(string backend) => _ejections.Add(1, Backend(backend));

    /// <summary>Makes a backend's gauges appear at 0 before anything happened to it.</summary>
    public void Touch(string backend)
    {
        _inFlight.Add(0, Backend(backend));
        _healthy.Add(0, Backend(backend));
        _connections.Add(0, Backend(backend));
    }

    public void Dispose() => _meter.Dispose();
}
