using System.Threading.Channels;
using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The state task's end of the journal channel: it only ever TryWrites, never waits for a disk.
// Before each record it writes the clock reading when that changed (one per batch at most). A
// record that does not fit is dropped and counted; the next one that fits is preceded by a gap
// record saying how many are missing, so a replay knows exactly where it must stop. Only the
// state task calls Record (so the counts are plain fields); Dropped is read by /metrics.
public sealed class Journal(ChannelWriter<JournalEntry> writer, StateClock clock)
{
    long _pendingGap, _dropped;
    DateTimeOffset? _lastClock;
    List<byte[]>? _secretsBeforeStart = [];

    /// <summary>Records dropped since startup.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>The first record: the table was made at clock.Now with config, its policies drawing from new Random(seed).</summary>
    public void Start(int seed, LbConfig config)
    {
        if (!writer.TryWrite(new JournalEntry.Start(JournalEntry.Version, clock.Now, seed, config))) Drop();
        _lastClock = clock.Now;
        var drawn = _secretsBeforeStart!;
        _secretsBeforeStart = null;
        foreach (var secret in drawn) Record(new JournalEntry.Secret(Convert.ToBase64String(secret)));
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

    public void Record(JournalEntry entry)
    {
        if (_pendingGap > 0)
        {
            if (!writer.TryWrite(new JournalEntry.Gap(_pendingGap))) { Drop(); return; }
            _pendingGap = 0;
            _lastClock = null;
        }
        var now = clock.Now;
        if (now != _lastClock)
        {
            if (!writer.TryWrite(new JournalEntry.Clock(now))) { Drop(); return; }
            _lastClock = now;
        }
        if (!writer.TryWrite(entry)) Drop();
    }

    /// <summary>The state loop has ended: nothing more comes.</summary>
    public void Complete() => writer.TryComplete();

    void Drop()
    {
        _pendingGap++;
        Interlocked.Increment(ref _dropped);
    }
}
