using System.Diagnostics;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Pipeline;

public sealed class LoopCountersTests
{
    sealed record LaterEvent : StateEvent;
    sealed record LaterRequest : StateRequest;

    [Fact]
    public void Count_ByKind_WithTheSenderOfEach_AndUnnamedKindsByTypeName()
    {
        var counters = new LoopCounters();
        counters.Count(Wake.Instance);
        counters.Count(Wake.Instance);
        counters.Count(new ConfigRejected("bad"));
        counters.Count(new LaterEvent());
        counters.Count(new StatusRequest(new TaskCompletionSource<StatusSnapshot>()));
        counters.Count(new LaterRequest());
        counters.Count(new LaterRequest());

        var events = counters.Events();
        Assert.Contains(("Wake", "BackendState", 2L), events);
        Assert.Contains(("ConfigChanged", "ConfigWatcher", 1L), events); // a rejected file comes the same way
        Assert.Contains(("LaterEvent", "other", 1L), events);
        Assert.DoesNotContain(events, e => e.Message == "LaterRequest"); // each channel shows its own kinds
        var requests = counters.Requests();
        Assert.Contains(("StatusRequest", "AdminEndpoints", 1L), requests);
        Assert.Contains(("LaterRequest", "other", 2L), requests);
        Assert.Contains(("PickRequest", "ProxyEndpoint", 0L), requests);
    }

    [Fact]
    public void Turn_AddsTheTimeSinceItsStart_AndCountsTurns()
    {
        var counters = new LoopCounters();
        var start = Stopwatch.GetTimestamp() - Stopwatch.Frequency / 10; // a turn that began 100 ms ago
        counters.Turn(start);
        counters.Turn(Stopwatch.GetTimestamp());
        Assert.Equal(2, counters.Turns);
        Assert.InRange(counters.BusySeconds, 0.1, 5);
    }
}
