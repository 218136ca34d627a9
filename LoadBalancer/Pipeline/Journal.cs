using System.Threading.Channels;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The state task's end of the journal channel: it only ever TryWrites, never waits for a disk.
// Records go into a batch (structs: a pick costs no heap object) that is handed over (Flush) when
// it is full, or at the end of a loop turn once HandOverEvery has passed since the last hand-over
// (the loop's wake timer makes sure a turn comes by then): the channel's cost, and the writer's
// wake-up, are per batch of up to BatchSize records, not per record or per turn. Before each record it adds the clock reading when
// that changed (one per loop turn at most). A batch that does not fit is dropped whole and
// counted; the next batch begins with a gap record saying how many records are missing, so a
// replay knows exactly where it must stop. Only the state task calls Record and Flush (so the
// counts are plain fields); Dropped is read by /metrics. The writer hands the emptied batches
// back through journalfree (a free list), so under load no batch is allocated.
public sealed class Journal(ChannelWriter<JournalBatch> writer, StateClock clock, ChannelReader<JournalBatch>? free = null)
{
    /// <summary>Records per batch at most: with the channel's capacity, the bound on what waits for the writer.</summary>
    public const int BatchSize = 1024;

    /// <summary>A turn's end hands a batch that is not full over when this long has passed since the last hand-over.</summary>
    public static readonly TimeSpan HandOverEvery = TimeSpan.FromMilliseconds(1);

    long _handedOverAt; // the clock's timestamp

    JournalBatch _batch = new(BatchSize);
    long _pendingGap, _dropped;
    DateTimeOffset? _lastClock;
    List<byte[]>? _secretsBeforeStart = [];

    /// <summary>Records dropped since startup.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>The first record: the table was made at clock.Now with config, its policies drawing from new Random(seed).</summary>
    public void Start(int seed, LbConfig config)
    {
        _batch.Add(JournalRecord.Of(new JournalEntry.Start(JournalEntry.Version, clock.Now, seed, config)));
        _lastClock = clock.Now;
        var drawn = _secretsBeforeStart!;
        _secretsBeforeStart = null;
        foreach (var secret in drawn) Record(new JournalEntry.Secret(Convert.ToBase64String(secret)));
        Flush();
    }

    /// <summary>The table's affinity secret source (affinity.secret unset): draws a random secret and
    /// records it, so a replay computes the same cookies. The table draws its first while it is
    /// made, before Start: those wait for it.</summary>
    public byte[] DrawSecret()
    {
        var secret = Balancing.Affinity.NewSecret();
        if (_secretsBeforeStart is { } early) early.Add(secret);
        else Record(new JournalEntry.Secret(Convert.ToBase64String(secret)));
        return secret;
    }

    public void Record(JournalEntry entry) => Record(JournalRecord.Of(entry));

    // The hot three, without a JournalEntry each.
    public void Pick(long pick, BackendRoute[]? exclude, RequestKey key)
    {
        if (exclude is null && key.Affinity is null) Record(JournalRecord.Pick(pick, key.Hash));
        else Record(JournalEntry.Picked.Of(pick, exclude, key));
    }

    public void Answer(long pick, int? route, Refusal refusal) => Record(JournalRecord.Answer(pick, route, refusal));

    public void Outcome(RequestOutcome o) => Record(JournalRecord.Outcome(o.Backend.Id, o.Kind, o.Status));

    public void Record(in JournalRecord record)
    {
        var now = clock.Now;
        if (now != _lastClock)
        {
            _batch.Add(JournalRecord.Clock(now));
            _lastClock = now;
        }
        _batch.Add(record);
        if (_batch.Count >= BatchSize) Flush();
    }

    int Waiting => _batch.Count - (_pendingGap > 0 ? 1 : 0);

    /// <summary>The state loop's turn is over: hands the batch over when HandOverEvery has passed.
    /// True when records still wait (the loop then comes round within HandOverEvery).</summary>
    public bool EndTurn()
    {
        if (Waiting == 0) return false;
        if (clock.GetElapsedTime(_handedOverAt) < HandOverEvery) return true;
        Flush();
        return false;
    }

    /// <summary>Hands the batch to the writer. A full channel drops the batch: its records become
    /// the gap the next batch begins with.</summary>
    public void Flush()
    {
        var records = Waiting;
        if (records == 0) return;
        _handedOverAt = clock.GetTimestamp();
        if (writer.TryWrite(_batch))
        {
            _batch = free is not null && free.TryRead(out var empty) ? empty : new JournalBatch(BatchSize); // the writer's, back
            _pendingGap = 0;
            return;
        }
        _pendingGap += records;
        Interlocked.Add(ref _dropped, records);
        _batch.Clear();
        _batch.Add(JournalRecord.Of(new JournalEntry.Gap(_pendingGap)));
        _lastClock = null; // the reading is said again after a gap
    }

    /// <summary>The state loop has ended: what is batched goes, and nothing more comes.</summary>
    public void Complete()
    {
        Flush();
        writer.TryComplete();
    }
}
