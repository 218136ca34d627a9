using System.Globalization;
using System.Text.Json;
using LoadBalancer.Admin;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Replay;

// `LoadBalancer replay PATH [--until TIME] [--status]`: feeds a state journal, record by record,
// to a fresh table (Replayer) and compares every recorded answer with the one the replay gives.
//   exit 0  "N messages, M picks, 0 divergences"
//   exit 1  the first divergence: its message number (the line in the journal), expected, got
//   exit 2  the journal cannot be read (no file, not a journal, an unknown version)
//   exit 3  a gap the writer left (records dropped), or a beginning rotated away
// A file the writer started after a rotation begins with a checkpoint (the table as it was then)
// and replays alone. When PATH begins with neither a start nor a checkpoint (a journal written
// before checkpoints), PATH.1 is read first.
public static class ReplayCommand
{
    public const int ExitDivergence = 1, ExitUnreadable = 2, ExitGap = 3;

    public static async Task<int> Run(string path, string? until, bool printStatus, TextWriter stdout, TextWriter stderr)
    {
        if (!File.Exists(path))
        {
            await stderr.WriteLineAsync($"error: {path}: no such file").ConfigureAwait(false);
            return ExitUnreadable;
        }
        var lines = File.ReadAllLines(path).ToList();
        var source = path;
        if (lines.Count > 0 && !IsStart(lines[0]) && File.Exists(path + ".1"))
        {
            lines.InsertRange(0, File.ReadAllLines(path + ".1"));
            source = $"{path}.1 + {path}";
        }
        return await Run(lines, source, until, printStatus, stdout, stderr).ConfigureAwait(false);
    }

    static bool IsStart(string line) =>
        line.StartsWith("{\"t\":\"start\"", StringComparison.Ordinal) || line.StartsWith("{\"t\":\"checkpoint\"", StringComparison.Ordinal);

    /// <summary>The replay of journal lines (message n is lines[n-1]).</summary>
    public static async Task<int> Run(IReadOnlyList<string> lines, string source, string? until, bool printStatus, TextWriter stdout, TextWriter stderr)
    {
        // Read every record first: a client's abort is replayed from where its answer shows it.
        var entries = new JournalEntry?[lines.Count];
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i].Length == 0) continue;
            try
            {
                entries[i] = JsonSerializer.Deserialize(lines[i], JournalJson.Default.JournalEntry)
                    ?? throw new JsonException("null");
            }
            catch (Exception e) when (e is JsonException or NotSupportedException)
            {
                if (i == lines.Count - 1) // the process died mid-write: the last line is cut short
                {
                    await stderr.WriteLineAsync($"note: message {i + 1}, the last line, is incomplete (the balancer stopped while writing it); replayed up to it").ConfigureAwait(false);
                    break;
                }
                await stderr.WriteLineAsync($"error: {source}: message {i + 1} is not a journal record: {e.Message}").ConfigureAwait(false);
                return ExitUnreadable;
            }
        }
        var abortsAt = AbortsAt(entries);

        Replayer? replay = null;
        DateTimeOffset? stopAt = null;
        var messages = 0;
        for (var i = 0; i < entries.Length; i++)
        {
            var n = i + 1;
            var entry = entries[i];
            if (entry is null) continue;
            if (entry is JournalEntry.Start start)
            {
                if (start.V != JournalEntry.Version)
                {
                    await stderr.WriteLineAsync($"error: {source}: journal version {start.V}; this balancer reads version {JournalEntry.Version}").ConfigureAwait(false);
                    return ExitUnreadable;
                }
                replay = new Replayer(start, entries.Skip(i + 1).TakeWhile(x => x is not (JournalEntry.Start or JournalEntry.Checkpoint)).OfType<JournalEntry.Secret>().Select(x => x.Value));
                if (until is not null && (stopAt = Until(until, start.At)) is null)
                {
                    await stderr.WriteLineAsync($"error: --until {until}: not a time (use 2026-11-25T12:00:31Z or 12:00:31)").ConfigureAwait(false);
                    return ExitUnreadable;
                }
                messages++;
                continue;
            }
            if (entry is JournalEntry.Checkpoint checkpoint)
            {
                if (checkpoint.V != JournalEntry.Version)
                {
                    await stderr.WriteLineAsync($"error: {source}: journal version {checkpoint.V}; this balancer reads version {JournalEntry.Version}").ConfigureAwait(false);
                    return ExitUnreadable;
                }
                if (replay?.Produced.TryPeek(out var pending) == true)
                    return await DivergedAsync(stdout, n, entry, "no further answer", Describe(replay, pending)).ConfigureAwait(false);
                if (checkpoint.At > stopAt) break;
                // From here the table is the checkpoint's (the live one reseeded and made its policy afresh here too).
                replay = new Replayer(checkpoint, entries.Skip(i + 1).TakeWhile(x => x is not (JournalEntry.Start or JournalEntry.Checkpoint))
                    .OfType<JournalEntry.Secret>().Select(x => x.Value), replay?.Picks ?? 0);
                if (until is not null && stopAt is null && (stopAt = Until(until, checkpoint.At)) is null)
                {
                    await stderr.WriteLineAsync($"error: --until {until}: not a time (use 2026-11-25T12:00:31Z or 12:00:31)").ConfigureAwait(false);
                    return ExitUnreadable;
                }
                messages++;
                continue;
            }
            if (replay is null)
            {
                await stderr.WriteLineAsync($"gap at message {n}: {source} does not begin with the run's start record (its beginning was rotated away); a replay needs the run from its start").ConfigureAwait(false);
                return ExitGap;
            }
            if (entry is JournalEntry.Gap gap)
            {
                await stdout.WriteLineAsync(Summary(messages, replay.Picks, stopAt)).ConfigureAwait(false);
                await stderr.WriteLineAsync($"gap at message {n}: the journal writer fell behind and {gap.Dropped} records are missing here; the replay cannot go past it").ConfigureAwait(false);
                return ExitGap;
            }
            if (entry is JournalEntry.Secret)
            {
                messages++; // handed to the table when it draws (see the Replayer)
                continue;
            }
            if (entry is JournalEntry.Clock c)
            {
                if (c.At > stopAt) break;
                replay.Clock.Set(c.At);
                messages++;
                continue;
            }
            messages++;
            if (entry.Answer is { } recorded)
            {
                // An output: the next answer the replay gave must be this one.
                var got = replay.Produced.TryDequeue(out var produced) ? Describe(replay, produced) : "no answer";
                if (got != Describe(replay, entry)) return await DivergedAsync(stdout, n, entry, Describe(replay, entry), got).ConfigureAwait(false);
                continue;
            }
            // An input: every answer the replay gave so far must have been recorded before it.
            if (replay.Produced.TryPeek(out var extra))
                return await DivergedAsync(stdout, n, entry, "no further answer", Describe(replay, extra)).ConfigureAwait(false);
            if (abortsAt.TryGetValue(i, out var aborted))
                foreach (var pick in aborted) replay.Abort(pick);
            entry.Apply(replay);
        }
        if (replay is null)
        {
            await stderr.WriteLineAsync($"error: {source}: no start record: not a journal, or an empty one").ConfigureAwait(false);
            return ExitUnreadable;
        }
        if (stopAt is null && replay.Produced.TryPeek(out var unrecorded))
            return await DivergedAsync(stdout, entries.Length + 1, null, "no further answer (end of journal)", Describe(replay, unrecorded)).ConfigureAwait(false);
        await stdout.WriteLineAsync(Summary(messages, replay.Picks, stopAt)).ConfigureAwait(false);
        if (printStatus || stopAt is not null) await PrintStateAsync(replay, stdout).ConfigureAwait(false);
        return 0;
    }

    static async Task<int> DivergedAsync(TextWriter stdout, int n, JournalEntry? at, string expected, string got)
    {
        await stdout.WriteLineAsync($"divergence at message {n} ({(at is null ? "end" : Name(at))}): expected {expected}, got {got}").ConfigureAwait(false);
        return ExitDivergence;
    }

    static string Describe(Replayer r, JournalEntry e) => e is JournalEntry.Answered { Route: { } route }
        ? $"{e.Answer} ({r.Route(route).Url})" : e.Answer ?? Name(e);

    // A pick answered Cancelled: its client left while the live table was applying the input just
    // before that answer; the replay cancels the pick's abort token just before applying that input.
    static Dictionary<int, List<long>> AbortsAt(JournalEntry?[] entries)
    {
        var at = new Dictionary<int, List<long>>();
        var lastInput = -1;
        for (var i = 0; i < entries.Length; i++)
        {
            switch (entries[i])
            {
                case null or JournalEntry.Clock or JournalEntry.Start or JournalEntry.Checkpoint or JournalEntry.Gap or JournalEntry.Secret: break;
                case JournalEntry.Answered { Refusal: Refusal.Cancelled } a when lastInput >= 0:
                    if (!at.TryGetValue(lastInput, out var list)) at[lastInput] = list = [];
                    list.Add(a.Pick);
                    break;
                case { Answer: null }: lastInput = i; break;
            }
        }
        return at;
    }

    static string Summary(int messages, int picks, DateTimeOffset? until) =>
        $"{messages} messages, {picks} picks, 0 divergences" + (until is { } t ? $" (until {t.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffZ})" : "");

    static string Name(JournalEntry e) => e.GetType().Name.ToLowerInvariant();

    // ISO 8601 (a zone-less one is UTC), or a time of day, UTC, on the day the run started.
    static DateTimeOffset? Until(string text, DateTimeOffset start)
    {
        if (TimeSpan.TryParseExact(text, [@"hh\:mm\:ss", @"hh\:mm\:ss\.FFFFFFF", @"hh\:mm"], CultureInfo.InvariantCulture, out var timeOfDay))
            return new DateTimeOffset(start.UtcDateTime.Date + timeOfDay, TimeSpan.Zero);
        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : null;
    }

    static async Task PrintStateAsync(Replayer replay, TextWriter stdout)
    {
        var status = new MemoryStream();
        await AdminEndpoints.WriteStatusAsync(status, replay.Table.Snapshot()).ConfigureAwait(false);
        var events = new MemoryStream();
        await AdminEndpoints.WriteEventsAsync(events, replay.Table.Events.Since(0)).ConfigureAwait(false);
        await stdout.WriteLineAsync("/status:").ConfigureAwait(false);
        await stdout.WriteLineAsync(System.Text.Encoding.UTF8.GetString(status.ToArray())).ConfigureAwait(false);
        await stdout.WriteLineAsync("/events:").ConfigureAwait(false);
        await stdout.WriteLineAsync(System.Text.Encoding.UTF8.GetString(events.ToArray())).ConfigureAwait(false);
    }
}
