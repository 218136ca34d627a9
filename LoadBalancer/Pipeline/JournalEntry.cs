using System.Text.Json.Serialization;
using LoadBalancer.Configuration;
using LoadBalancer.Replay;

namespace LoadBalancer.Pipeline;

// The state journal's records: one per message the state task applied, with the answer it gave,
// plus the clock readings and the random seed those answers depended on. The one place that maps
// a message to its record (the Of factories, used by BackendState) and a record back to the same
// call on a fresh table (Replay, used by `LoadBalancer replay`). A new message type is one more
// record here: its Of, its Replay, and a JsonDerivedType line naming it in the file.
//
// The file is JSON lines, version 1 (docs: README, "The state journal"): one object per line,
// "t" first, naming the record. Backends are named by route id (1, 2, 3... in the order the
// table made them, the same in a replay); times are ISO 8601 with ticks, exact.
[JsonPolymorphic(TypeDiscriminatorPropertyName = "t")]
[JsonDerivedType(typeof(Start), "start")]
[JsonDerivedType(typeof(Clock), "clock")]
[JsonDerivedType(typeof(Gap), "gap")]
[JsonDerivedType(typeof(Probed), "probe")]
[JsonDerivedType(typeof(Ended), "outcome")]
[JsonDerivedType(typeof(ConnectionsMoved), "connections")]
[JsonDerivedType(typeof(EjectionsDue), "tick")]
[JsonDerivedType(typeof(Reloaded), "config")]
[JsonDerivedType(typeof(ReloadRejected), "rejected")]
[JsonDerivedType(typeof(Picked), "pick")]
[JsonDerivedType(typeof(Planned), "plan")]
[JsonDerivedType(typeof(StatusTaken), "status")]
[JsonDerivedType(typeof(Explained), "explain")]
[JsonDerivedType(typeof(Drained), "drain")]
public abstract record JournalEntry
{
    public const int Version = 1;

    /// <summary>Replays this record on r's table. Null when its answer matches (or it has none);
    /// else what was recorded and what the replay answered.</summary>
    internal abstract (string Expected, string Got)? Replay(Replayer r);

    // ---- framing: not messages ------------------------------------------------------------

    /// <summary>The first record of a run: the format version, the clock when the table was made,
    /// the seed of the random source the policies draw from, the configuration it was made with.</summary>
    public sealed record Start(int V, DateTimeOffset At, int Seed, LbConfig Config) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r) => null; // the Replayer is built from it
    }

    /// <summary>The state task's clock reading for the records that follow (one per batch at most).</summary>
    public sealed record Clock(DateTimeOffset At) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Clock.Set(At);
            return null;
        }
    }

    /// <summary>The writer's channel was full: Dropped records are missing here. A replay stops (exit 3).</summary>
    public sealed record Gap(long Dropped) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r) => null; // the Replayer stops before it
    }

    // ---- events ---------------------------------------------------------------------------

    public sealed record Probed(int Route, DateTimeOffset At, int? Status, double LatencyMs, string? Error) : JournalEntry
    {
        public static Probed Of(ProbeResult p) => new(p.Backend.Id, p.At, p.Status, p.Latency.TotalMilliseconds, p.Error);

        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Apply(new ProbeResult(r.Route(Route), At, Status, TimeSpan.FromMilliseconds(LatencyMs), Error));
            return null;
        }
    }

    public sealed record Ended(int Route, Pipeline.Outcome Kind, int Status) : JournalEntry
    {
        public static Ended Of(RequestOutcome o) => new(o.Backend.Id, o.Kind, o.Status);

        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Apply(new RequestOutcome(r.Route(Route), Kind, Status));
            return null;
        }
    }

    /// <summary>Delta: the net opens minus closes the state task took (ConnectionsChanged carries none itself).</summary>
    public sealed record ConnectionsMoved(int Route, int Delta) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.ApplyConnections(Route, Delta);
            return null;
        }
    }

    /// <summary>The loop's end-of-batch check found an ejection due (a no-op check is not recorded).</summary>
    public sealed record EjectionsDue : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Tick();
            return null;
        }
    }

    public sealed record Reloaded(LbConfig Config) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Reconcile(Config);
            return null;
        }
    }

    public sealed record ReloadRejected(string Problem) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Reject(Problem);
            return null;
        }
    }

    // ---- requests, with the answers given ---------------------------------------------------

    /// <summary>Exclude: the routes a retry had tried; Answer: the route picked, null for none eligible.</summary>
    public sealed record Picked(int[]? Exclude, int? Answer) : JournalEntry
    {
        public static Picked Of(BackendRoute[]? exclude, Pipeline.Pick answer) =>
            new(exclude is null ? null : Array.ConvertAll(exclude, x => x.Id), answer.Backend?.Id);

        internal override (string, string)? Replay(Replayer r)
        {
            r.Picks++;
            var got = r.Table.Choose(Exclude is null ? null : Array.ConvertAll(Exclude, r.Route)).Backend?.Id;
            return got == Answer ? null : (r.Describe(Answer), r.Describe(got));
        }
    }

    public sealed record Planned(int[] Answer) : JournalEntry
    {
        public static Planned Of(ProbePlan p) => new(Array.ConvertAll(p.Targets, x => x.Id));

        internal override (string, string)? Replay(Replayer r)
        {
            var got = Array.ConvertAll(r.Table.ProbePlan().Targets, x => x.Id);
            return got.SequenceEqual(Answer) ? null : ($"probe plan [{string.Join(", ", Answer)}]", $"probe plan [{string.Join(", ", got)}]");
        }
    }

    /// <summary>A /status snapshot: recorded because taking it ends any ejection that is due.</summary>
    public sealed record StatusTaken : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Snapshot();
            return null;
        }
    }

    /// <summary>A /explain dry run: recorded because it ends any ejection that is due; its own draw is not the live one's.</summary>
    public sealed record Explained : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            r.Table.Explain();
            return null;
        }
    }

    /// <summary>An authorized drain or undrain (a refused one changes nothing and is not recorded); Answer: the backend was found.</summary>
    public sealed record Drained(string Url, bool On, bool Answer) : JournalEntry
    {
        internal override (string, string)? Replay(Replayer r)
        {
            var got = r.Table.Drain(Url, On);
            return got == Answer ? null : (Answer ? "backend found" : "no such backend", got ? "backend found" : "no such backend");
        }
    }
}
