using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Replay;

// A fresh state task for a replay: a BackendTable made from the journal's start record (its
// configuration, its clock reading, its random seed), on a StateClock the journal sets, with
// routes that never send. Routes get ids 1, 2, 3... in the order the table asks for them, as
// BackendPools gives them in the live process, so a journal's route ids name the same backends.
public sealed class Replayer
{
    static readonly HttpMessageInvoker NeverSends = new(new NoNetwork());
    readonly Dictionary<int, BackendRoute> _routes = [];
    int _nextId;

    public Replayer(JournalEntry.Start start)
    {
        Clock = new StateClock(TimeProvider.System);
        Clock.Set(start.At);
        Table = new BackendTable(start.Config, Create, Clock, Changes.Add, metrics: null, random: new Random(start.Seed));
    }

    public StateClock Clock { get; }
    public BackendTable Table { get; }
    public int Picks { get; set; }

    /// <summary>Every state change the replay made, as the live table logged them.</summary>
    public List<StateChange> Changes { get; } = [];

    BackendRoute Create(BackendConfig b, PoolConfig pool)
    {
        var route = new BackendRoute(++_nextId, b.Url, b.Key, NeverSends) { Protocol = b.Protocol, Tls = b.Tls };
        _routes[route.Id] = route;
        return route;
    }

    /// <summary>The route a journal names. An id the table never made (none in a journal the balancer
    /// wrote) gets a route the table does not know, which it ignores, as the live one would have.</summary>
    public BackendRoute Route(int id)
    {
        if (!_routes.TryGetValue(id, out var route)) _routes[id] = route = new BackendRoute(id, $"route {id}", $"route {id}", NeverSends);
        return route;
    }

    public string Describe(int? id) => id is not { } n ? "no backend (503)" : $"{Route(n).Url} (route {n})";

    sealed class NoNetwork : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a replay sends nothing");
    }
}
