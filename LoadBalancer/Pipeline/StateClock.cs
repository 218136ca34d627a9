namespace LoadBalancer.Pipeline;

// The state task's clock: read once per batch (Advance) and the same for every message of that
// batch. So every rule sees one "now" per message, and the journal records that one reading:
// a replay sets the same readings (Set) and the table makes the same decisions at the same times.
// Timers and timestamps pass through to the real (or a test's fake) clock.
public sealed class StateClock(TimeProvider inner) : TimeProvider
{
    DateTimeOffset _now = inner.GetUtcNow();

    /// <summary>The reading every message of the current batch sees.</summary>
    public DateTimeOffset Now => _now;

    /// <summary>The state loop, at the start of a batch: read the real clock.</summary>
    public DateTimeOffset Advance() => _now = inner.GetUtcNow();

    /// <summary>Replay: the reading the journal recorded.</summary>
    public void Set(DateTimeOffset now) => _now = now;

    public override DateTimeOffset GetUtcNow() => _now;
    public override long GetTimestamp() => inner.GetTimestamp();
    public override long TimestampFrequency => inner.TimestampFrequency;
    public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        inner.CreateTimer(callback, state, dueTime, period);
}
