using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace LoadBalancer.Pipeline;

// One journal record -> one JSON line, as the JournalWriter writes it. The hot records (a clock
// reading, a pick, its answer, its outcome: three or four per request) are formatted straight
// into UTF-8 from constant pieces: the polymorphic serializer cost more than the state task's
// whole pick and allocated for each record. The bytes are the ones the serializer writes for the
// same JournalEntry (JournalLinesTests checks it), so a replay reads them back with JournalJson as
// before; the rare records go through the serializer itself.
public static class JournalLines
{
    /// <summary>For the serializer's lines: '+' in "+00:00" and the like as they are, not \u002B.</summary>
    public static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One record's line (tests, tools): what the JournalWriter writes for it, without the newline.</summary>
    public static string Line(in JournalRecord r)
    {
        var output = new ArrayBufferWriter<byte>();
        using var json = new Utf8JsonWriter(output, JsonOptions);
        Write(output, json, r);
        return Encoding.UTF8.GetString(output.WrittenSpan[..^1]);
    }

    static readonly byte[][] Refusals = Names<Refusal>(), Outcomes = Names<Outcome>();

    static byte[][] Names<TEnum>() where TEnum : struct, Enum
    {
        var values = Enum.GetValues<TEnum>();
        var names = new byte[values.Max(v => Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture)) + 1][];
        foreach (var v in values) names[Convert.ToInt32(v, System.Globalization.CultureInfo.InvariantCulture)] = Encoding.UTF8.GetBytes(v.ToString());
        return names;
    }

    /// <summary>Writes the record as one line, its newline included. json: for the rare records, reset to out.</summary>
    public static void Write(ArrayBufferWriter<byte> output, Utf8JsonWriter json, in JournalRecord r)
    {
        var span = output.GetSpan(160);
        var n = 0;
        switch (r.Kind)
        {
            case JournalRecord.Kinds.Clock:
                Put(span, ref n, "{\"t\":\"clock\",\"at\":\""u8);
                n += Time(span[n..], r.At);
                Put(span, ref n, "\"}\n"u8);
                break;
            case JournalRecord.Kinds.Pick:
                Put(span, ref n, "{\"t\":\"pick\",\"pick\":"u8);
                Number(span, ref n, r.PickNumber);
                Put(span, ref n, ",\"exclude\":null,\"hash\":"u8);
                if (r.Hash is { } hash) { Utf8Formatter.TryFormat(hash, span[n..], out var w); n += w; }
                else Put(span, ref n, "null"u8);
                Put(span, ref n, ",\"affinity\":null}\n"u8);
                break;
            case JournalRecord.Kinds.Answer:
                Put(span, ref n, "{\"t\":\"answer\",\"pick\":"u8);
                Number(span, ref n, r.PickNumber);
                Put(span, ref n, ",\"route\":"u8);
                if (r.AnsweredRoute is { } route) Number(span, ref n, route);
                else Put(span, ref n, "null"u8);
                Put(span, ref n, ",\"refusal\":\""u8);
                Put(span, ref n, Refusals[(int)r.Refusal]);
                Put(span, ref n, "\"}\n"u8);
                break;
            case JournalRecord.Kinds.Outcome:
                Put(span, ref n, "{\"t\":\"outcome\",\"route\":"u8);
                Number(span, ref n, r.Route);
                Put(span, ref n, ",\"kind\":\""u8);
                Put(span, ref n, Outcomes[(int)r.OutcomeKind]);
                Put(span, ref n, "\",\"status\":"u8);
                Number(span, ref n, r.Status);
                Put(span, ref n, "}\n"u8);
                break;
            default:
                json.Reset(output);
                JsonSerializer.Serialize(json, r.Entry, JournalJson.Default.JournalEntry);
                json.Flush();
                output.Write("\n"u8);
                return;
        }
        output.Advance(n);
    }

    static void Put(Span<byte> span, ref int n, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(span[n..]);
        n += bytes.Length;
    }

    static void Number(Span<byte> span, ref int n, long value)
    {
        Utf8Formatter.TryFormat(value, span[n..], out var written);
        n += written;
    }

    // As System.Text.Json writes a DateTimeOffset: ISO 8601 round-trip ("O"), the fraction's
    // trailing zeros cut (and its dot when nothing is left).
    static int Time(Span<byte> span, DateTimeOffset at)
    {
        at.TryFormat(span, out var n, "O", System.Globalization.CultureInfo.InvariantCulture);
        // "O": yyyy-MM-ddTHH:mm:ss.fffffff+hh:mm (or Z-less offset); the fraction is at 19..27.
        var end = 27;
        while (end > 20 && span[end - 1] == (byte)'0') end--;
        if (end == 20) end = 19;
        if (end < 27)
        {
            span[27..n].CopyTo(span[end..]);
            n -= 27 - end;
        }
        return n;
    }
}
