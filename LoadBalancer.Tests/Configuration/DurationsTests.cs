using LoadBalancer.Configuration;

namespace LoadBalancer.Tests.Configuration;

public sealed class DurationsTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("10s", 10_000)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("00:00:10", 10_000)]
    [InlineData("01:30:00", 5_400_000)]
    [InlineData("00:00:00.250", 250)]
    [InlineData("1.5s", 1_500)]
    [InlineData("10S", 10_000)]
    [InlineData("250MS", 250)]
    [InlineData(" 10s ", 10_000)]
    public void TryParse_ContractForms_Parsed(string text, int milliseconds)
    {
        Assert.True(Durations.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("s")]
    [InlineData("ms")]
    [InlineData("10")]
    [InlineData("ten seconds")]
    [InlineData("10x")]
    [InlineData("1d")]
    [InlineData("-5s")]
    [InlineData("+5s")]
    [InlineData(".5s")]
    [InlineData("1e3s")]
    [InlineData("1,5s")]
    [InlineData("99999999999999999999h")]
    public void TryParse_NotADuration_False(string text)
    {
        Assert.False(Durations.TryParse(text, out _));
    }

    [Theory]
    [InlineData(250, "250ms")]
    [InlineData(1_500, "1500ms")]
    [InlineData(10_000, "10s")]
    [InlineData(90_000, "90s")]
    [InlineData(120_000, "2m")]
    [InlineData(3_600_000, "1h")]
    public void Format_Duration_ShortestExactForm(int milliseconds, string text)
    {
        Assert.Equal(text, Durations.Format(TimeSpan.FromMilliseconds(milliseconds)));
    }

    [Theory]
    [InlineData(250)]
    [InlineData(1_500)]
    [InlineData(30_000)]
    [InlineData(150_000)]
    [InlineData(7_200_000)]
    public void Format_ThenTryParse_RoundTrips(int milliseconds)
    {
        var duration = TimeSpan.FromMilliseconds(milliseconds);

        Assert.True(Durations.TryParse(Durations.Format(duration), out var back));
        Assert.Equal(duration, back);
    }
}
