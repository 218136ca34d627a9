using System.Threading.Channels;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The handler's last word after the state task has gone: a request cut at the very end of a stop
// finishes after the inbox closed, and telling its outcome must not fail the request's task.
public sealed class StateClientTests
{
    [Fact]
    public async Task TellOutcomeAsync_InboxClosedAndFull_CompletesWithoutThrowing()
    {
        var events = Channel.CreateBounded<StateEvent>(1);
        var client = new StateClient(events.Writer, Channel.CreateBounded<StateRequest>(1).Writer);
        var routes = new RouteFactory();
        _ = new BackendTable(TestConfigs.Create("http://a:1"), routes.Create, new FakeTimeProvider(), _ => { });
        var outcome = new RequestOutcome(routes["http://a:1"], Outcome.Response, 200);

        Assert.True(events.Writer.TryWrite(Wake.Instance)); // full, so the tell has to wait for room
        var waiting = client.TellOutcomeAsync(outcome).AsTask();
        events.Writer.Complete();                           // the state task closed its inbox

        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        await client.TellOutcomeAsync(outcome);             // and a tell after the close, too
        await Assert.ThrowsAsync<ChannelClosedException>(() => client.TellAsync(outcome).AsTask()); // TellAsync still says so
    }
}
