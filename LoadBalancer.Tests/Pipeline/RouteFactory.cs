using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Probing;

namespace LoadBalancer.Tests.Pipeline;

// BackendTable's createRoute for unit tests: a BackendRoute over a handler that never sends,
// remembering each route so a test can find it by URL and see whether it was disposed.
public sealed class RouteFactory
{
    readonly List<(BackendRoute Route, MockHttpHandler Handler)> _created = [];
    int _nextId;

    public BackendRoute Create(BackendConfig backend)
    {
        var handler = MockHttpHandler.NeverSends();
        var route = new BackendRoute(++_nextId, backend.Url, backend.Key, new HttpMessageInvoker(handler))
        {
            Protocol = backend.Protocol, // as BackendPools: the route carries what it was made for
            Tls = backend.Tls,
            Address = backend.Address,
        };
        _created.Add((route, handler));
        return route;
    }

    public int Count => _created.Count;

    /// <summary>Every route made, in order (retired and removed ones too).</summary>
    public IReadOnlyList<BackendRoute> All => _created.Select(c => c.Route).ToList();

    /// <summary>The most recent route made for this URL.</summary>
    public BackendRoute this[string url] => _created.Last(c => c.Route.Url == url).Route;

    public bool IsDisposed(BackendRoute route) => _created.Single(c => c.Route == route).Handler.Disposed;
}
