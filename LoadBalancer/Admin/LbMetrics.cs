using System.Diagnostics.Metrics;

namespace LoadBalancer.Admin;

// The balancer's instruments (System.Diagnostics.Metrics, so dotnet-counters and OpenTelemetry
// see them too). /metrics exposes them in Prometheus text through prometheus-net's MeterAdapter.
// Every series has the label backend="<url as in lb.json>".
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

    public LbMetrics(IMeterFactory? factory = null)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("requests", description: "Responses from backends, by backend and status code.");
        _failures = _meter.CreateCounter<long>("backend_failures", description: "Forward attempts that failed without a usable response, by backend and reason.");
        _inFlight = _meter.CreateUpDownCounter<long>("in_flight", description: "Requests in flight, by backend.");
        _healthy = _meter.CreateUpDownCounter<long>("backend_healthy", description: "1 when the backend is eligible for traffic, else 0.");
        _probeSeconds = _meter.CreateHistogram<double>("probe_latency_seconds", unit: "s", description: "Active health-check probe latency.");
        _connections = _meter.CreateUpDownCounter<long>("pool_connections_open", description: "Open pooled connections, by backend.");
        _retries = _meter.CreateCounter<long>("retries", description: "Forward attempts that were retries on another backend.");
        _ejections = _meter.CreateCounter<long>("ejections", description: "Passive-health ejections, by backend.");
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

    /// <summary>prometheus-net forgets a series not written for a day: a steady gauge would vanish.
    /// Adding zero on every probe keeps them.</summary>
    public void Touch(string backend)
    {
        _inFlight.Add(0, Backend(backend));
        _healthy.Add(0, Backend(backend));
        _connections.Add(0, Backend(backend));
    }

    public void Dispose() => _meter.Dispose();
}
