using System.Threading.Channels;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// Every channel of the pipeline, made in one place so their capacities and full-modes can be
// read (and argued about) together. None is unbounded: a stuck consumer shows up as waiting
// writers, not as memory growing until the process dies.
public sealed class PipelineChannels
{
    /// <summary>Ticker -> HealthChecker. One slot, DropWrite: when full, the new tick is dropped and
    /// the waiting one kept (Go's time.Ticker up to Go 1.22). A health checker still busy with
    /// the last round misses ticks instead of queueing a backlog of rounds.</summary>
    public Channel<Tick> Ticks { get; } = Channel.CreateBounded<Tick>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
        SingleReader = true,
        SingleWriter = true,
    });

    /// <summary>Everyone -> BackendState, one-way. Wait when full: an outcome is never dropped,
    /// or in-flight counts would drift. Sized for a burst of every in-flight request ending at once.</summary>
    public Channel<StateEvent> Events { get; } = Channel.CreateBounded<StateEvent>(new BoundedChannelOptions(EventsCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });

    /// <summary>Handlers, HealthChecker, admin -> BackendState, each carrying its reply slot.
    /// Wait when full: back-pressure on new requests rather than dropping a question.</summary>
    public Channel<StateRequest> Requests { get; } = Channel.CreateBounded<StateRequest>(new BoundedChannelOptions(RequestsCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });

    /// <summary>ConfigWatcher -> Ticker: a new probe interval. One slot, the newest wins.</summary>
    public Channel<TimeSpan> Periods { get; } = Channel.CreateBounded<TimeSpan>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
        SingleWriter = true,
    });

    /// <summary>Handlers -> AccessLogWriter: one record per client request. Handlers only ever
    /// TryWrite and count a full channel as a dropped line (never DropWrite, which would hide the
    /// drop: it says true), so a slow disk never delays a request.</summary>
    public Channel<AccessRecord> AccessLog { get; } = Channel.CreateBounded<AccessRecord>(new BoundedChannelOptions(AccessLogCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
    });

    public const int AccessLogCapacity = 4096;
    public const int EventsCapacity = 8192, RequestsCapacity = 8192;

    /// <summary>ConfigWatcher -> AccessLogWriter: a new accessLog after a reload. One slot, the newest wins.</summary>
    public Channel<AccessLogConfig> AccessLogSettings { get; } = Channel.CreateBounded<AccessLogConfig>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
        SingleWriter = true,
    });

    /// <summary>ConfigWatcher -> CertificateWatcher: an https listen's new tls or listenProtocols
    /// after a reload, with the pair already loaded. One slot, the newest wins.</summary>
    public Channel<TlsSettings> TlsSettings { get; } = Channel.CreateBounded<TlsSettings>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = true,
        SingleWriter = true,
    });

    /// <summary>BackendState -> JournalWriter: every message the state task applied, with its answer.
    /// Only the state task writes, only with TryWrite (see Journal.cs): a full channel is a gap in
    /// the journal, counted and marked, never a pick waiting for a disk.</summary>
    public Channel<JournalBatch> Journal { get; } = Channel.CreateBounded<JournalBatch>(new BoundedChannelOptions(JournalCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
        SingleWriter = true,
    });

    /// <summary>JournalWriter -> BackendState: written batches, emptied, for the state task to fill
    /// again (Effective Go's "leaky buffer"): both ends only TryWrite/TryRead; a full free list
    /// leaves the batch to the GC, an empty one makes the state task allocate a new batch.</summary>
    public Channel<JournalBatch> JournalFree { get; } = Channel.CreateBounded<JournalBatch>(new BoundedChannelOptions(JournalFreeCapacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = true,
        SingleWriter = true,
    });

    public const int JournalFreeCapacity = 16;

    /// <summary>In batches (full ones of Journal.BatchSize records, or what Journal.HandOverEvery
    /// gathered): 131,072 records at most wait for the writer.</summary>
    public const int JournalCapacity = 128;
}
