using System.Buffers;
using System.Text.Json;
using CsCheck;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Pipeline;

// The writer formats the hot records (clock, pick, answer, outcome) by hand; a replay reads them
// with the serializer. The property: for any such record the hand-made line is byte for byte the
// serializer's line for the same JournalEntry (what version 1 journals have always held), and it
// reads back as the same entry.
public sealed class JournalLinesTests
{
    static readonly Gen<DateTimeOffset> TimeGen = Gen.Select(Gen.Long[0, DateTimeOffset.MaxValue.UtcTicks - 1], Gen.Int[0, 3])
        .Select((ticks, round) => new DateTimeOffset(round switch
        {
            0 => ticks,
            1 => ticks - ticks % TimeSpan.TicksPerSecond,      // no fraction: no dot
            2 => ticks - ticks % TimeSpan.TicksPerMillisecond, // trailing zeros cut
            _ => ticks - ticks % 10,
        }, TimeSpan.Zero));

    static readonly Gen<JournalRecord> RecordGen = Gen.OneOf(
        TimeGen.Select(JournalRecord.Clock),
        Gen.Select(Gen.Long[0, long.MaxValue], Gen.ULong, Gen.Bool).Select((pick, hash, has) => JournalRecord.Pick(pick, has ? hash : null)),
        Gen.Select(Gen.Long[0, long.MaxValue], Gen.Int[0, int.MaxValue], Gen.Enum<Refusal>()).Select((pick, route, refusal) => JournalRecord.Answer(pick, route == 0 ? null : route, refusal)),
        Gen.Select(Gen.Int[1, int.MaxValue], Gen.Enum<Outcome>(), Gen.Int[0, 999]).Select(JournalRecord.Outcome));

    [Fact]
    public void Line_AnyHotRecord_IsTheSerializersLineAndReadsBack()
    {
        RecordGen.Sample(record =>
        {
            var entry = record.ToEntry();
            var output = new ArrayBufferWriter<byte>();
            using (var json = new Utf8JsonWriter(output, JournalLines.JsonOptions))
                JsonSerializer.Serialize(json, entry, JournalJson.Default.JournalEntry);
            var expected = System.Text.Encoding.UTF8.GetString(output.WrittenSpan);
            var line = JournalLines.Line(record);
            return line == expected && JsonSerializer.Deserialize(line, JournalJson.Default.JournalEntry) == entry;
        }, iter: 5000);
    }

    [Fact]
    public void Line_Clock_KeepsTheFractionExactlyAndThePlusSign()
    {
        Assert.Equal("""{"t":"clock","at":"2026-11-25T12:00:00+00:00"}""", JournalLines.Line(JournalRecord.Clock(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero))));
        Assert.Equal("""{"t":"clock","at":"2026-11-25T12:00:00.00001+00:00"}""", JournalLines.Line(JournalRecord.Clock(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero).AddTicks(100))));
    }

    [Fact]
    public void Of_RareRecords_KeepTheirEntry()
    {
        var retry = new JournalEntry.Picked(3, [1, 2], null, "cookie");
        Assert.Same(retry, JournalRecord.Of(retry).ToEntry());
        Assert.Equal("""{"t":"pick","pick":3,"exclude":[1,2],"hash":null,"affinity":"cookie"}""", JournalLines.Line(JournalRecord.Of(retry)));
    }

    [Fact]
    public void Record_Is32Bytes() => Assert.Equal(32, System.Runtime.CompilerServices.Unsafe.SizeOf<JournalRecord>());
}
