using System.Threading.Channels;
using LoadBalancer.Admin;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Forwarding;

// The request path's end of the access log. On says whether to build a record at all (off: not
// one allocation per request); Write hands one to the AccessLogWriter stage and never waits:
// TryWrite into the bounded channel, and a record that does not fit is dropped and counted
// (loadbalancer_access_log_dropped_total). Go: select { case records <- r: default: dropped++ }
// The writer stage switches it on once its output is open, and off when the log is turned off.
public sealed class AccessLog(ChannelWriter<AccessRecord> records, LbMetrics metrics)
{
    volatile bool _on;

    public bool On => _on;

    public void Write(AccessRecord record)
    {
        if (!records.TryWrite(record)) metrics.AccessLogDropped();
    }

    public long Dropped => metrics.AccessLogDroppedTotal;

    /// <summary>By the AccessLogWriter: its output is open (true) or closed (false).</summary>
    internal void Switch(bool on) => _on = on;

    /// <summary>By the AccessLogWriter at stop, after Kestrel: no more records (Go: close(records)).</summary>
    internal void Complete() => records.TryComplete();
}
