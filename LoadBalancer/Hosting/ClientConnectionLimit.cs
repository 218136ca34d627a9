using System.Net;
using Microsoft.AspNetCore.Connections;

namespace LoadBalancer.Hosting;

// limits.maxClientConnections the way HAProxy's maxconn works: at the limit the balancer stops
// accepting, so further connections wait in the kernel's accept queue (bounded by the listen
// backlog) until one closes. Kestrel's own MaxConcurrentConnections accepts the connection and
// closes it at once instead, and accepting and holding it would cost memory per connection: with
// the gate, what a flood of clients can make the process hold is at most the limit times one
// connection's cost (docs: "Limits").
//
// A slot is a SemaphoreSlim count: taken before Accept (GatedListener), given back when Kestrel
// is done with the connection (Release, connection middleware on the client listener only).
// Go: a buffered channel of tokens, `sem <- struct{}{}` before Accept, `<-sem` when it closes.
public sealed class ClientConnectionLimit(int max)
{
    readonly SemaphoreSlim _slots = new(max, max);

    public int Max => max;

    /// <summary>Connections being served now (at most Max).</summary>
    public int Open => max - _slots.CurrentCount;

    /// <summary>The endpoint to give Kestrel for the client listener: TrackingListenerFactory
    /// recognises it and gates that listener (and no other).</summary>
    public IPEndPoint EndPoint(IPEndPoint endPoint) => new GatedEndPoint(endPoint.Address, endPoint.Port, this);

    /// <summary>Connection middleware for the client listener: gives the slot back when the connection ends.</summary>
    public ConnectionDelegate Release(ConnectionDelegate next) => async connection =>
    {
        try
        {
            await next(connection);
        }
        finally
        {
            _slots.Release();
        }
    };

    internal IConnectionListener Gate(IConnectionListener inner) => new GatedListener(inner, _slots);

    /// <summary>An IPEndPoint that says "gate me"; Kestrel passes it to the transport factory as is.</summary>
    internal sealed class GatedEndPoint(IPAddress address, int port, ClientConnectionLimit limit) : IPEndPoint(address, port)
    {
        public ClientConnectionLimit Limit { get; } = limit;
    }

    sealed class GatedListener(IConnectionListener inner, SemaphoreSlim slots) : IConnectionListener
    {
        readonly CancellationTokenSource _unbound = new();

        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            // Kestrel's accept loop passes no token: then the unbind token alone, no linked source per accept.
            using var linked = cancellationToken.CanBeCanceled
                ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token) : null;
            try
            {
                await slots.WaitAsync(linked?.Token ?? _unbound.Token).ConfigureAwait(false); // at the limit: do not accept
            }
            catch (OperationCanceledException)
            {
                return null; // unbound or stopping: Kestrel's accept loop ends on null
            }
            ConnectionContext? connection;
            try
            {
                connection = await inner.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                slots.Release();
                throw;
            }
            if (connection is null) slots.Release();
            return connection;
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _unbound.Cancel();
            return inner.UnbindAsync(cancellationToken);
        }

        public ValueTask DisposeAsync()
        {
            _unbound.Cancel();
            return inner.DisposeAsync();
        }
    }
}
