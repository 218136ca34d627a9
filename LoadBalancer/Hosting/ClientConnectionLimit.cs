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
// A reload resizes it (Resize): a raise adds tokens at once; a cut takes the free ones at once
// and the rest as connections close (_debt: releases owed to the cut, not to the semaphore), so
// no open connection is closed for it, as with HAProxy's maxconn on reload.
public sealed class ClientConnectionLimit
{
    readonly SemaphoreSlim _slots;
    int _max;
    int _debt; // tokens the last cut still has to take back; paid by Release before the semaphore
    int _open;

    public ClientConnectionLimit(int max)
    {
        _max = max;
        _slots = new SemaphoreSlim(max, int.MaxValue);
    }

    public int Max => Volatile.Read(ref _max);

    /// <summary>Connections being served now (at most Max, once a cut has been paid off).</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>A new limit from a reload. Called by the config watcher, one at a time.</summary>
    public void Resize(int max)
    {
        var delta = max - Interlocked.Exchange(ref _max, max);
        if (delta > 0)
        {
            // Cancel what an earlier cut still owes first, then hand out the rest.
            while (delta > 0 && TryPayDebt()) delta--;
            if (delta > 0) _slots.Release(delta);
        }
        for (; delta < 0; delta++)
            if (!_slots.Wait(0)) Interlocked.Increment(ref _debt); // in use: taken back when it closes
    }

    void Return()
    {
        Interlocked.Decrement(ref _open);
        GiveBack();
    }

    // A token comes back: to a cut that is still owed one, else to the semaphore.
    void GiveBack()
    {
        if (!TryPayDebt()) _slots.Release();
    }

    // Takes one token off what a cut still owes; false when it owes none.
    bool TryPayDebt()
    {
        while (Volatile.Read(ref _debt) is var owed and > 0)
            if (Interlocked.CompareExchange(ref _debt, owed - 1, owed) == owed) return true;
        return false;
    }

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
            Return();
        }
    };

    internal IConnectionListener Gate(IConnectionListener inner) => new GatedListener(inner, this);

    /// <summary>An IPEndPoint that says "gate me"; Kestrel passes it to the transport factory as is.</summary>
    internal sealed class GatedEndPoint(IPAddress address, int port, ClientConnectionLimit limit) : IPEndPoint(address, port)
    {
        public ClientConnectionLimit Limit { get; } = limit;
    }

    sealed class GatedListener(IConnectionListener inner, ClientConnectionLimit limit) : IConnectionListener
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
                await limit._slots.WaitAsync(linked?.Token ?? _unbound.Token).ConfigureAwait(false); // at the limit: do not accept
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
                limit.GiveBack();
                throw;
            }
            if (connection is null) limit.GiveBack();
            else Interlocked.Increment(ref limit._open);
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
