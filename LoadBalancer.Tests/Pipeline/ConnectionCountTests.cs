using System.Threading.Channels;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// Pooled connections opening and closing on their way to the state task: coalesced per route, so
// churn while the events channel is full holds back one write per route, not one per connection,
// and the state task still ends up with the exact count.
public sealed class ConnectionCountTests
{
    const string A = "http://a:1", B = "http://b:2";
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    readonly RouteFactory _routes = new();

    [Fact]
    public async Task TellConnection_ChurnWhileEventsIsFull_OneWaitingWritePerRouteAndTheCountIsExact()
    {
        var events = Channel.CreateBounded<StateEvent>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        var writer = new WaitCountingWriter<StateEvent>(events.Writer);
        var client = new StateClient(writer, Channel.CreateBounded<StateRequest>(1).Writer);
        var table = new BackendTable(TestConfigs.Create(A, B), _routes.Create, new FakeTimeProvider(), _ => { });
        var (a, b) = (_routes[A], _routes[B]);
        Assert.True(events.Writer.TryWrite(Wake.Instance)); // full: the state task is busy elsewhere

        Parallel.For(0, 1000, i =>
        {
            client.TellConnection(a, +1);
            client.TellConnection(b, +1);
            client.TellConnection(a, -1);
            if (i % 10 == 0) client.TellConnection(b, -1);
        }); // net: a 0, b 900, in 3100 opens and closes

        Assert.Equal(2, writer.Waits); // one per route is waiting for room, not one per open or close
        Assert.IsType<Wake>(await events.Reader.ReadAsync());
        var notified = new List<BackendRoute>();
        for (var i = 0; i < 2; i++)
        {
            var note = Assert.IsType<ConnectionsChanged>(await events.Reader.ReadAsync().AsTask().WaitAsync(Deadline));
            notified.Add(note.Backend);
            table.Apply(note);
        }
        Assert.Equal(new HashSet<BackendRoute> { a, b }, notified.ToHashSet());
        Assert.False(events.Reader.TryRead(out _)); // nothing else was queued
        Assert.Equal([0, 900], table.Snapshot().Backends.Select(s => s.OpenConnections));

        // The notification was taken, so the next change sends a new one.
        client.TellConnection(a, +1);
        table.Apply(Assert.IsType<ConnectionsChanged>(await events.Reader.ReadAsync().AsTask().WaitAsync(Deadline)));
        Assert.Equal([1, 900], table.Snapshot().Backends.Select(s => s.OpenConnections));
    }

    [Fact]
    public void PendingConnections_AddTake_OnlyTheFirstAddAfterATakeAsksForANotification()
    {
        var pending = new PendingConnections();

        Assert.True(pending.Add(+1));  // send one
        Assert.False(pending.Add(+1)); // one is queued: it will carry this too
        Assert.False(pending.Add(-1));
        Assert.Equal(1, pending.Take());
        Assert.Equal(0, pending.Take()); // an extra take (a notification that finds 0) is harmless
        Assert.True(pending.Add(-1));    // taken: the next change sends again
        Assert.Equal(-1, pending.Take());
    }

    // Counts writers that found the channel full and began to wait (ChannelWriter.WriteAsync
    // tries TryWrite, then waits with WaitToWriteAsync).
    sealed class WaitCountingWriter<T>(ChannelWriter<T> inner) : ChannelWriter<T>
    {
        int _waits;
        public int Waits => Volatile.Read(ref _waits);

        public override bool TryWrite(T item) => inner.TryWrite(item);

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _waits);
            return inner.WaitToWriteAsync(cancellationToken);
        }

        public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);
    }
}
