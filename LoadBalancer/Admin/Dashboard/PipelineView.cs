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
    AccessLogWriter accessLogWriter, AccessLog accessLog, JournalWriter? journalWriter = null, Journal? journal = null)
{
    /// <summary>One channel now. From is null where many write (events, requests: see Messages).</summary>
    public sealed record ChannelView(string Name, string? From, string To, int Capacity, int Count, long Read,
        (string Message, string From, long Count)[]? Messages = null, bool? Enabled = null, long? Dropped = null);

    public ChannelView[] Channels() =>
    [
        View("periods", channels.Periods.Reader, 1, "ConfigWatcher", "Ticker", ticker.PeriodsRead),
        View("ticks", channels.Ticks.Reader, 1, "Ticker", "HealthChecker", checker.TicksRead),
        View("events", channels.Events.Reader, PipelineChannels.EventsCapacity, null, "BackendState", state.Counters.Events()),
        View("requests", channels.Requests.Reader, PipelineChannels.RequestsCapacity, null, "BackendState", state.Counters.Requests()),
        View("accesslog", channels.AccessLog.Reader, PipelineChannels.AccessLogCapacity, "ProxyEndpoint", "AccessLogWriter",
            accessLogWriter.RecordsRead) with { Enabled = accessLog.On, Dropped = accessLog.Dropped },
        View("accesslogsettings", channels.AccessLogSettings.Reader, 1, "ConfigWatcher", "AccessLogWriter", accessLogWriter.SettingsRead),
        View("journal", channels.Journal.Reader, PipelineChannels.JournalCapacity, "BackendState", "JournalWriter",
            journalWriter?.RecordsRead ?? 0) with { Enabled = journalWriter?.On ?? false, Dropped = journal?.Dropped ?? 0 },
    ];

    static ChannelView View<T>(string name, ChannelReader<T> reader, int capacity, string? from, string to, long read) =>
        new(name, from, to, capacity, reader.CanCount ? reader.Count : 0, read);

    static ChannelView View<T>(string name, ChannelReader<T> reader, int capacity, string? from, string to,
        (string Message, string From, long Count)[] messages) =>
        new(name, from, to, capacity, reader.CanCount ? reader.Count : 0, messages.Sum(m => m.Count), messages);

    public void Write(Utf8JsonWriter json)
    {
        json.WriteStartObject("pipeline");
        // A monotonic clock for rates (seconds from an arbitrary start, never set back): the page
        // divides the change of a total by the change of this.
        json.WriteNumber("clockSeconds", Math.Round((double)Stopwatch.GetTimestamp() / Stopwatch.Frequency, 3));
        json.WriteStartObject("stateTask");
        json.WriteNumber("busySeconds", Math.Round(state.Counters.BusySeconds, 6));
        json.WriteNumber("turns", state.Counters.Turns);
        json.WriteEndObject();
        json.WriteStartArray("channels");
        foreach (var c in Channels()) Write(json, c);
        json.WriteEndArray();
        json.WriteEndObject();
    }

    static void Write(Utf8JsonWriter json, ChannelView c)
    {
        json.WriteStartObject();
        json.WriteString("name", c.Name);
        if (c.From is not null) json.WriteString("from", c.From);
        json.WriteString("to", c.To);
        json.WriteNumber("capacity", c.Capacity);
        json.WriteNumber("count", c.Count);
        if (c.Messages is not null)
        {
            json.WriteStartArray("messages");
            foreach (var (message, sender, count) in c.Messages)
            {
                json.WriteStartObject();
                json.WriteString("type", message);
                json.WriteString("from", sender);
                json.WriteNumber("read", count);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        json.WriteNumber("read", c.Read);
        if (c.Enabled is { } on) json.WriteBoolean("enabled", on);
        if (c.Dropped is { } dropped) json.WriteNumber("dropped", dropped);
        json.WriteEndObject();
    }
}
