using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Pipeline;

// What each Outcome means for passive health and for retries.
public sealed class OutcomeExtensionsTests
{
    [Theory]
    [InlineData(Outcome.ConnectRefused, true, true)]
    [InlineData(Outcome.ConnectTimeout, true, true)]
    [InlineData(Outcome.TlsFailure, true, true)]
    [InlineData(Outcome.ResponseTimeout, true, false)]
    [InlineData(Outcome.ResetBeforeHeaders, true, false)]
    [InlineData(Outcome.ResetAfterHeaders, true, false)]
    [InlineData(Outcome.BadGatewayStatus, true, false)]
    [InlineData(Outcome.Response, false, false)]
    [InlineData(Outcome.ClientAbort, false, false)]
    public void IsBackendFailureAndNothingSent_EachOutcome_AsTheContractSays(Outcome outcome, bool backendFailure, bool nothingSent)
    {
        Assert.Equal(backendFailure, outcome.IsBackendFailure());
        Assert.Equal(nothingSent, outcome.NothingSent());
    }

    [Fact]
    public void Describe_EveryOutcome_HasText()
    {
        Assert.All(Enum.GetValues<Outcome>(), o => Assert.False(string.IsNullOrWhiteSpace(o.Describe())));
        Assert.Equal(Enum.GetValues<Outcome>().Length, Enum.GetValues<Outcome>().Select(o => o.Describe()).Distinct().Count());
    }

    [Theory]
    [InlineData(BackendHealth.Unknown, "unknown")]
    [InlineData(BackendHealth.Healthy, "healthy")]
    [InlineData(BackendHealth.Unhealthy, "unhealthy")]
    [InlineData(BackendHealth.Ejected, "ejected")]
    [InlineData(BackendHealth.Draining, "draining")]
    public void Label_EachState_TheContractWord(BackendHealth state, string label)
    {
        Assert.Equal(label, state.Label());
    }
}
