using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace LoadBalancer.Admin.Dashboard;

// Request durations by backend for the dashboard's p50/p99, taken from the instrument /metrics
// exports (loadbalancer.request.duration, recorded once per request by the handler). Counted only
// while someone looks: a poll of /dashboard/data switches the listener on (Touch), and it switches
// itself off IdleAfter later without one, so a balancer nobody watches does no work per request
// for the dashboard (System.Diagnostics.Metrics calls a listener only while it is enabled).
// The counts are cumulative and never reset; the page takes the difference between two polls,
// keeps the last minute of them and reads quantiles off the buckets, as histogram_quantile does.
// Nothing here is backend state: numbers by the backend label, added to by request threads.
public sealed class DashboardLatency : IDisposable
{
    public static readonly TimeSpan IdleAfter = TimeSpan.FromSeconds(15);

    /// <summary>Upper bounds of the buckets, in milliseconds: 0.05 ms to about 65 s, 25% apart (under
    /// 12% error on a quantile); the last bucket has no upper bound.</summary>
    public static readonly double[] BoundsMs = Bounds();

    readonly MeterListener _listener = new();
    readonly ConcurrentDictionary<string, long[]> _counts = new(StringComparer.Ordinal);
    readonly ITimer _idle;
    readonly Lock _switch = new(); // Touch and the idle timer: admin and timer threads only, never a request
    Instrument? _instrument;
    bool _on;

    public DashboardLatency(LbMetrics metrics, TimeProvider time)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == metrics.Meter && instrument.Name == LbMetrics.RequestDurationName)
                lock (_switch)
                {
                    _instrument = instrument;
                    if (_on) listener.EnableMeasurementEvents(instrument);
                }
        };
        _listener.SetMeasurementEventCallback<double>(Record);
        _idle = time.CreateTimer(_ => SwitchOff(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _listener.Start();
    }

    /// <summary>Someone looks: count from now on, until IdleAfter without another Touch.</summary>
    public void Touch()
    {
        lock (_switch)
        {
            if (!_on && _instrument is not null) _listener.EnableMeasurementEvents(_instrument);
            _on = true;
            _idle.Change(IdleAfter, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>True while requests are counted.</summary>
    public bool On
    {
        get { lock (_switch) return _on; }
    }

    void SwitchOff()
    {
        lock (_switch)
        {
            if (!_on) return;
            _on = false;
            if (_instrument is not null) _listener.DisableMeasurementEvents(_instrument);
        }
    }

    // On the request's thread, once per request while on: one bucket search, one Interlocked add.
    void Record(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        string? backend = null;
        foreach (var tag in tags)
        {
            if (tag.Key == "backend") backend = tag.Value as string;
            else if (tag.Key == "code" && tag.Value is "1xx") return; // a WebSocket tunnel lasts as long as its socket
        }
        if (backend is null) return;
        var counts = _counts.GetOrAdd(backend, static _ => new long[BoundsMs.Length + 1]);
        Interlocked.Increment(ref counts[Bucket(seconds * 1000)]);
    }

    /// <summary>The index of the first bucket whose upper bound is at least ms (the last one: above every bound).</summary>
    public static int Bucket(double ms)
    {
        var i = Array.BinarySearch(BoundsMs, ms);
        return i >= 0 ? i : ~i;
    }

    /// <summary>Cumulative counts by backend label (BoundsMs.Length + 1 buckets each), copied now.</summary>
    public IEnumerable<(string Backend, long[] Counts)> Snapshot()
    {
        foreach (var (backend, counts) in _counts)
        {
            var copy = new long[counts.Length];
            for (var i = 0; i < copy.Length; i++) copy[i] = Volatile.Read(ref counts[i]);
            yield return (backend, copy);
        }
    }

    static double[] Bounds()
    {
        var bounds = new List<double>();
        for (var b = 0.05; b < 70_000; b *= 1.25) bounds.Add(Math.Round(b, b < 1 ? 3 : b < 100 ? 2 : 0));
        return bounds.ToArray();
    }

    public void Dispose()
    {
        _idle.Dispose();
        _listener.Dispose();
    }
}
