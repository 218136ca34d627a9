using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Exercises;

// Exercise 4 in docs/exercises.md: count the ticks the ticks channel drops, as a public
// "DroppedTicks" property on PipelineChannels. Looked up by reflection so this compiles before
// the exercise is done; it fails until the property exists and counts.
[Trait("Category", "Exercise")]
public sealed class DroppedTicksExerciseTests
{
    [ExerciseFact]
    public void DroppedTicks_ThreeTicksIntoTheOneSlot_CountsTwo()
    {
        var channels = new PipelineChannels();
        var at = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

        channels.Ticks.Writer.TryWrite(new Tick(at));
        channels.Ticks.Writer.TryWrite(new Tick(at.AddSeconds(10)));
        channels.Ticks.Writer.TryWrite(new Tick(at.AddSeconds(20)));

        var property = typeof(PipelineChannels).GetProperty("DroppedTicks");
        Assert.True(property is not null, "PipelineChannels has no public DroppedTicks property yet");
        Assert.Equal(2L, Convert.ToInt64(property.GetValue(channels)));
    }

    [ExerciseFact]
    public void DroppedTicks_ReaderKeepsUp_CountsNone()
    {
        var channels = new PipelineChannels();
        var at = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

        for (var i = 0; i < 3; i++)
        {
            channels.Ticks.Writer.TryWrite(new Tick(at.AddSeconds(10 * i)));
            Assert.True(channels.Ticks.Reader.TryRead(out _));
        }

        var property = typeof(PipelineChannels).GetProperty("DroppedTicks");
        Assert.True(property is not null, "PipelineChannels has no public DroppedTicks property yet");
        Assert.Equal(0L, Convert.ToInt64(property.GetValue(channels)));
    }
}
