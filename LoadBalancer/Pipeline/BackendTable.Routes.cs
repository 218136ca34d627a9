using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The pool swap rule of BackendTable (see BackendTable.cs): a reload that changes pool.*, a
// backend's protocol or its TLS settings gives the backend a new route; the old one is retired
// until the requests still using it end, then disposed.
public sealed partial class BackendTable
{
    // A SocketsHttpHandler's settings are fixed once it has sent, so new pool settings need a new
    // route. The entry stays: health, counters, in-flight and weight carry over. Requests in
    // flight keep the old route until they end; their outcomes and connection notes name the old
    // route's id, which still finds this entry, and the last outcome disposes the old pool.
    void ReplaceRoute(BackendEntry e, BackendConfig b, PoolConfig pool)
    {
        // What the old route carries: the entry's totals, less what earlier retired routes still hold.
        var old = new RetiredRoute(e.Route, e) { InFlight = e.InFlight, OpenConnections = e.OpenConnections };
        foreach (var r in _retired.Values)
        {
            if (r.Entry != e) continue;
            old.InFlight -= r.InFlight;
            old.OpenConnections -= r.OpenConnections;
        }
        e.Route = NewRoute(b with { Url = old.Route.Url }, pool); // the label in /status and /metrics stays
        e.Pool = pool;
        _byId.Add(e.Route.Id, e);
        if (old.InFlight == 0) Dispose(old);
        else _retired.Add(old.Route.Id, old);
    }

    void Dispose(RetiredRoute old)
    {
        _retired.Remove(old.Route.Id);
        _byId.Remove(old.Route.Id);
        Gone(old.Route);
        // Its connections close with its pool; their close notes come after the route has left
        // _byId and are ignored, so they are counted closed here.
        old.Entry.OpenConnections -= old.OpenConnections;
        old.Route.Dispose();
    }

    /// <summary>At stop, after the state loop's last message: closes every backend's connection
    /// pool, draining ones included (a removed backend's was closed when it drained).</summary>
    public void DisposeRoutes()
    {
        foreach (var e in _entries) e.Route.Dispose();
        foreach (var r in _retired.Values) r.Route.Dispose(); // old pools still finishing requests
    }
}
