namespace LoadBalancer.Pipeline;

// One journal record as the state task hands it over: a struct, so the hot records (a pick, its
// answer, its outcome, a clock reading: three or four per request) cost the state task no heap
// object; the rare ones (a probe, a reload, a drain...) carry their JournalEntry. The writer
// turns each into the same line the JournalEntry would be (JournalLines), and a replay reads that
// line back as a JournalEntry: the file format does not know this type exists.
public readonly struct JournalRecord
{
    public enum Kinds : byte { Entry, Clock, Pick, Answer, Outcome }

    public Kinds Kind { get; }
    // 32 bytes: a batch of 1,024 is 32 KiB.
    readonly long _number;   // Clock: UTC ticks; Pick, Answer: the pick's number
    readonly ulong _hash;    // Pick: the hash key
    readonly JournalEntry? _entry;
    readonly int _route;     // Answer, Outcome: the route id (Answer: 0 is none); Clock: the offset in minutes
    readonly short _status;  // Outcome: the status (an HTTP status, or 0)
    readonly byte _code;     // Pick: 1 when it has a hash; Answer: the Refusal; Outcome: the Outcome

    JournalRecord(Kinds kind, long number = 0, ulong hash = 0, int route = 0, int code = 0, int status = 0, JournalEntry? entry = null) =>
        (Kind, _number, _hash, _route, _code, _status, _entry) = (kind, number, hash, route, (byte)code, (short)status, entry);

    public static JournalRecord Of(JournalEntry entry) => entry switch
    {
        JournalEntry.Clock c => Clock(c.At),
        JournalEntry.Picked { Exclude: null, Affinity: null } p => Pick(p.Pick, p.Hash),
        JournalEntry.Answered a when a.Route is not 0 => Answer(a.Pick, a.Route, a.Refusal),
        JournalEntry.Ended o => Outcome(o.Route, o.Kind, o.Status),
        _ => new(Kinds.Entry, entry: entry),
    };

    public static JournalRecord Clock(DateTimeOffset at) => new(Kinds.Clock, number: at.UtcTicks, route: (int)at.Offset.TotalMinutes);

    /// <summary>A pick without excludes or an affinity cookie (those go as a Picked entry).</summary>
    public static JournalRecord Pick(long pick, ulong? hash) => new(Kinds.Pick, number: pick, hash: hash.GetValueOrDefault(), code: hash.HasValue ? 1 : 0);

    /// <summary>Route: a live route id (1, 2, 3...), or null.</summary>
    public static JournalRecord Answer(long pick, int? route, Refusal refusal) => route is 0
        ? new(Kinds.Entry, entry: new JournalEntry.Answered(pick, route, refusal))
        : new(Kinds.Answer, number: pick, route: route ?? 0, code: (int)refusal);

    public static JournalRecord Outcome(int route, Outcome kind, int status) => status is >= short.MinValue and <= short.MaxValue
        ? new(Kinds.Outcome, route: route, code: (int)kind, status: status)
        : new(Kinds.Entry, entry: new JournalEntry.Ended(route, kind, status));

    public DateTimeOffset At => new DateTimeOffset(_number, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(_route));
    public long PickNumber => _number;
    public ulong? Hash => _code == 1 ? _hash : null;
    public int? AnsweredRoute => _route == 0 ? null : _route;
    public Refusal Refusal => (Refusal)_code;
    public int Route => _route;
    public Outcome OutcomeKind => (Outcome)_code;
    public int Status => _status;
    public JournalEntry? Entry => _entry;

    /// <summary>The record as its JournalEntry (tests, and any reader that wants the object form).</summary>
    public JournalEntry ToEntry() => Kind switch
    {
        Kinds.Clock => new JournalEntry.Clock(At),
        Kinds.Pick => new JournalEntry.Picked(PickNumber, null, Hash),
        Kinds.Answer => new JournalEntry.Answered(PickNumber, AnsweredRoute, Refusal),
        Kinds.Outcome => new JournalEntry.Ended(Route, OutcomeKind, Status),
        _ => _entry!,
    };
}
