using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using LoadBalancer.Forwarding;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Admin.Dashboard;

// The pipeline as the dashboard draws it: every channel with what is in it now (Reader.Count,
// against its capacity) and how many messages its reader has taken since startup, and the state
// task's busy time. Only reads numbers their owners publish: each count is kept by the one loop
// that reads the channel; a channel's Count is the channel's own. No backend state, no message
// sent, nothing done per request: the page turns totals into rates by polling twice.
public sealed class PipelineView(PipelineChannels channels, BackendState state, HealthChecker checker, Ticker ticker,
    AccessLogWriter accessLogWriter, AccessLog accessLog)
{
    static readonly long Started = Stopwatch.GetTimestamp();

    public void Write(Utf8JsonWriter json)
    {
        json.WriteStartObject("pipeline");
        // A monotonic clock for rates: the page divides the change of a total by the change of this.
        json.WriteNumber("uptimeSeconds", Math.Round(Stopwatch.GetElapsedTime(Started).TotalSeconds, 3));
        json.WriteStartObject("stateTask");
        json.WriteNumber("busySeconds", Math.Round(state.Counters.BusySeconds, 6));
        json.WriteNumber("turns", state.Counters.Turns);
        json.WriteEndObject();

        json.WriteStartArray("channels");
        Channel(json, "periods", channels.Periods.Reader, 1, "ConfigWatcher", "Ticker", ticker.PeriodsRead);
        Channel(json, "ticks", channels.Ticks.Reader, 1, "Ticker", "HealthChecker", checker.TicksRead);
        Channel(json, "events", channels.Events.Reader, PipelineChannels.EventsCapacity, null, "BackendState", null, state.Counters.Events());
        Channel(json, "requests", channels.Requests.Reader, PipelineChannels.RequestsCapacity, null, "BackendState", null, state.Counters.Requests());
        Channel(json, "accesslog", channels.AccessLog.Reader, PipelineChannels.AccessLogCapacity, "ProxyEndpoint", "AccessLogWriter",
            accessLogWriter.RecordsRead, enabled: accessLog.On, dropped: accessLog.Dropped);
        Channel(json, "accesslogsettings", channels.AccessLogSettings.Reader, 1, "ConfigWatcher", "AccessLogWriter", accessLogWriter.SettingsRead);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    static void Channel<T>(Utf8JsonWriter json, string name, ChannelReader<T> reader, int capacity, string? from, string to, long? read,
        (string Message, string From, long Count)[]? messages = null, bool? enabled = null, long? dropped = null)
    {
        json.WriteStartObject();
        json.WriteString("name", name);
        if (from is not null) json.WriteString("from", from);
        json.WriteString("to", to);
        json.WriteNumber("capacity", capacity);
        json.WriteNumber("count", reader.CanCount ? reader.Count : 0);
        if (messages is not null)
        {
            long total = 0;
            json.WriteStartArray("messages");
            foreach (var (message, sender, count) in messages)
            {
                total += count;
                if (count == 0 && message == "other") continue;
                json.WriteStartObject();
                json.WriteString("type", message);
                json.WriteString("from", sender);
                json.WriteNumber("read", count);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            read = total;
        }
        json.WriteNumber("read", read ?? 0);
        if (enabled is { } on) json.WriteBoolean("enabled", on);
        if (dropped is { } d) json.WriteNumber("dropped", d);
        json.WriteEndObject();
    }
}
