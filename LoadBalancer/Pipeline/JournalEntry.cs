using System.Text.Json.Serialization;
using LoadBalancer.Configuration;
using LoadBalancer.Replay;

namespace LoadBalancer.Pipeline;

// The state journal's records. The one place that maps a state-task message to its record (the Of
// factories and constructors, used by BackendState) and a record back to the same call on a fresh
// table (Apply, used by `LoadBalancer replay`). A new message type is one more record here: how it
// is made, how a replay applies it, and a JsonDerivedType line naming it in the file.
//
// Three kinds, in the order they happened:
//   - inputs (a message the state task took): written BEFORE it is applied, so that everything
//     applying it caused comes after it; a replay applies them;
//   - outputs (an answer it gave: a pick's answer, now or later from the queue; a probe plan; a
//     drain's verdict): written when given; a replay compares each with the next answer its own
//     table gave, in order;
//   - framing: the start (configuration, clock, seed), clock readings, gaps.
//
// The file is JSON lines, version 1 (README, "The state journal"): one object per line, "t" first.
// Backends are named by route id (1, 2, 3... in the order the table made them, the same in a
// replay); picks by a number the state task gives them (1, 2, 3...); times are ISO 8601, exact.
[JsonPolymorphic(TypeDiscriminatorPropertyName = "t")]
[JsonDerivedType(typeof(Start), "start")]
[JsonDerivedType(typeof(Checkpoint), "checkpoint")]
[JsonDerivedType(typeof(Clock), "clock")]
[JsonDerivedType(typeof(Gap), "gap")]
[JsonDerivedType(typeof(Secret), "secret")]
[JsonDerivedType(typeof(Probed), "probe")]
[JsonDerivedType(typeof(Ended), "outcome")]
[JsonDerivedType(typeof(ConnectionsMoved), "connections")]
[JsonDerivedType(typeof(EjectionsDue), "tick")]
[JsonDerivedType(typeof(Reloaded), "config")]
[JsonDerivedType(typeof(ReloadRejected), "rejected")]
[JsonDerivedType(typeof(Picked), "pick")]
[JsonDerivedType(typeof(Cancelled), "cancel")]
[JsonDerivedType(typeof(Closed), "close")]
[JsonDerivedType(typeof(Plan), "plan")]
[JsonDerivedType(typeof(StatusTaken), "status")]
[JsonDerivedType(typeof(Explained), "explain")]
[JsonDerivedType(typeof(Drain), "drain")]
[JsonDerivedType(typeof(Resolved), "dns")]
[JsonDerivedType(typeof(DiscoveryPlan), "discoveryplan")]
[JsonDerivedType(typeof(Answered), "answer")]
[JsonDerivedType(typeof(DiscoveryPlanned), "discoveryplanned")]
[JsonDerivedType(typeof(Planned), "planned")]
[JsonDerivedType(typeof(Drained), "drained")]
public abstract record JournalEntry
{
    public const int Version = 1;

    /// <summary>An input: applies it to r's table (outputs it causes go to r.Produced).</summary>
    internal virtual void Apply(Replayer r) { }

    /// <summary>An output: the answer in words, to compare with the replay's. Null for inputs and framing.</summary>
    internal virtual string? Answer => null;

    // ---- framing -----------------------------------------------------------------------------

    /// <summary>The first record of a run: the format version, the clock when the table was made,
    /// the seed of the random source the policies draw from, the configuration it was made with.</summary>
    public sealed record Start(int V, DateTimeOffset At, int Seed, LbConfig Config) : JournalEntry;

    /// <summary>The first record of a file the writer started when the one before reached its size:
    /// the table as it was (Table), the clock, the configuration, and the seed the state task
    /// reseeded its random source with right then (its policies made afresh). A replay of the file
    /// alone starts from it.</summary>
    public sealed record Checkpoint(int V, DateTimeOffset At, int Seed, LbConfig Config, TableCheckpoint Table) : JournalEntry;

    /// <summary>The state task's clock reading for the records that follow (one per batch at most).</summary>
    public sealed record Clock(DateTimeOffset At) : JournalEntry;

    /// <summary>The writer's channel was full: Dropped records are missing here. A replay stops (exit 3).</summary>
    public sealed record Gap(long Dropped) : JournalEntry;

    /// <summary>An affinity secret the table drew (affinity.secret unset), base64. Like the seed,
    /// it makes a replay exact; like lb.json, it makes the journal a file to keep private. A replay
    /// hands them back in order (Replayer).</summary>
    public sealed record Secret(string Value) : JournalEntry;

    // ---- inputs: events ----------------------------------------------------------------------

    public sealed record Probed(int Route, DateTimeOffset At, int? Status, double LatencyMs, string? Error) : JournalEntry
    {
        public static Probed Of(ProbeResult p) => new(p.Backend.Id, p.At, p.Status, p.Latency.TotalMilliseconds, p.Error);
        internal override void Apply(Replayer r) =>
            r.Table.Apply(new ProbeResult(r.Route(Route), At, Status, TimeSpan.FromMilliseconds(LatencyMs), Error));
    }

    public sealed record Ended(int Route, Outcome Kind, int Status) : JournalEntry
    {
        public static Ended Of(RequestOutcome o) => new(o.Backend.Id, o.Kind, o.Status);
        internal override void Apply(Replayer r) => r.Table.Apply(new RequestOutcome(r.Route(Route), Kind, Status));
    }

    /// <summary>Delta: the net opens minus closes the state task took (ConnectionsChanged carries none itself).</summary>
    public sealed record ConnectionsMoved(int Route, int Delta) : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.ApplyConnections(Route, Delta);
    }

    /// <summary>The loop's end-of-batch Tick, when it could act: an ejection due or a pick queued
    /// (a no-op Tick is not recorded).</summary>
    public sealed record EjectionsDue : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.Tick();
    }

    public sealed record Reloaded(LbConfig Config) : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.Reconcile(Config);
    }

    public sealed record ReloadRejected(string Problem) : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.Reject(Problem);
    }

    /// <summary>The DnsResolver's answer for a discovered backend (MembershipChanged): its addresses, or null and the error.</summary>
    public sealed record Resolved(string Backend, string[]? Addresses, string? Error) : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.Apply(new MembershipChanged(Backend, Addresses, Error));
    }

    /// <summary>A queued pick's client left (PickCancelled).</summary>
    public sealed record Cancelled(long Pick) : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Cancel(Pick);
    }

    /// <summary>The loop ended: the picks still queued are answered (Stopping).</summary>
    public sealed record Closed : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.CloseQueue();
    }

    // ---- inputs: requests (their answers are outputs) -------------------------------------------

    /// <summary>Pick: its number; Exclude: the routes a retry had tried; Hash and Affinity: the
    /// request's hash key and affinity cookie (RequestKey), when it had them. Answered now or later (Answered).</summary>
    public sealed record Picked(long Pick, int[]? Exclude, ulong? Hash = null, string? Affinity = null) : JournalEntry
    {
        public static Picked Of(long pick, BackendRoute[]? exclude, RequestKey key) =>
            new(pick, exclude is null ? null : Array.ConvertAll(exclude, x => x.Id), key.Hash, key.Affinity);
        internal override void Apply(Replayer r) => r.Pick(Pick, Exclude, new RequestKey(Hash, Affinity));
    }

    /// <summary>The DnsResolver asked which backends to look up.</summary>
    public sealed record DiscoveryPlan : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Produced.Enqueue(DiscoveryPlanned.Of(r.Table.DiscoveryPlan()));
    }

    public sealed record Plan : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Produced.Enqueue(Planned.Of(r.Table.ProbePlan()));
    }

    /// <summary>A /status snapshot: recorded because taking it ends any ejection that is due.</summary>
    public sealed record StatusTaken : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.Snapshot();
    }

    /// <summary>A /explain dry run: recorded because it ends any ejection that is due and warms slow
    /// starters to now; its own random draw is not the live one's.</summary>
    public sealed record Explained : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Table.Explain();
    }

    /// <summary>An authorized drain or undrain (a refused one changes nothing and is not recorded).</summary>
    public sealed record Drain(string Url, bool On) : JournalEntry
    {
        internal override void Apply(Replayer r) => r.Produced.Enqueue(new Drained(r.Table.Drain(Url, On)));
    }

    // ---- outputs ---------------------------------------------------------------------------

    /// <summary>Pick number Pick was answered: Route (null: none) and why not (Refusal).</summary>
    public sealed record Answered(long Pick, int? Route, Refusal Refusal) : JournalEntry
    {
        internal override string Answer => $"pick {Pick}: " + (Route is { } n ? $"route {n}" : Refusal.ToString());
    }

    public sealed record Planned(int[] Targets) : JournalEntry
    {
        public static Planned Of(ProbePlan p) => new(Array.ConvertAll(p.Targets, x => x.Id));
        internal override string Answer => $"probe plan [{string.Join(", ", Targets)}]";
    }

    /// <summary>The backends (Key) the DnsResolver was told to look up.</summary>
    public sealed record DiscoveryPlanned(string[] Backends) : JournalEntry
    {
        public static DiscoveryPlanned Of(Pipeline.DiscoveryPlan p) => new([.. p.Targets.Select(b => b.Key)]);
        internal override string Answer => $"discovery plan [{string.Join(", ", Backends)}]";
    }

    /// <summary>Found: the backend to drain or undrain was in the table.</summary>
    public sealed record Drained(bool Found) : JournalEntry
    {
        internal override string Answer => Found ? "drain: backend found" : "drain: no such backend";
    }
}
