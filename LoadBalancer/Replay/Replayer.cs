using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Replay;

// A fresh state task for a replay: a BackendTable made from the journal's start record (its
// configuration, its clock reading, its random seed), on a StateClock the journal sets, with
// routes that never send. Routes get ids 1, 2, 3... in the order the table asks for them, as
// BackendPools gives them in the live process, so a journal's route ids name the same backends.
// The answers the replayed table gives (picks, now or from the queue; probe plans; drains) go to
// Produced, in order, to be compared with the journal's.
public sealed class Replayer
{
    static readonly HttpMessageInvoker NeverSends = new(new NoNetwork());
    readonly Dictionary<int, BackendRoute> _routes = [];
    readonly Dictionary<PickRequest, long> _pickIds = new(ReferenceEqualityComparer.Instance);
    readonly Dictionary<long, Waiter> _waiters = [];
    readonly Dictionary<long, CancellationTokenSource> _aborts = [];
    readonly Queue<int> _restoredIds = new(); // a checkpoint's route ids, in the order the table makes them
    int _nextId;

    /// <param name="secrets">The affinity secrets the live table drew, in order (the journal's secret records).</param>
    public Replayer(JournalEntry.Start start, IEnumerable<string>? secrets = null)
    {
        Clock = new StateClock(TimeProvider.System);
        Clock.Set(start.At);
        var drawn = new Queue<string>(secrets ?? []);
        Table = new BackendTable(start.Config, Create, Clock, Changes.Add, metrics: null, random: new Random(start.Seed),
            drawSecret: () => drawn.TryDequeue(out var s) ? Convert.FromBase64String(s) : Balancing.Affinity.NewSecret())
        {
            Answered = (p, pick) =>
            {
                _pickIds.Remove(p, out var id);
                Produced.Enqueue(new JournalEntry.Answered(id, pick.Backend?.Id, pick.Refused));
            },
        };
    }

    /// <summary>A replay of a file that begins with a checkpoint: the table as it was there, its
    /// queued picks waiting again. picks: the picks replayed before (a journal read on past it).</summary>
    public Replayer(JournalEntry.Checkpoint checkpoint, IEnumerable<string>? secrets = null, int picks = 0)
    {
        Picks = picks;
        Clock = new StateClock(TimeProvider.System);
        Clock.Set(checkpoint.At);
        var c = checkpoint.Table;
        foreach (var b in c.Backends) _restoredIds.Enqueue(b.Route);
        foreach (var r in c.Retired) _restoredIds.Enqueue(r.Route);
        var drawn = new Queue<string>(secrets ?? []);
        Table = new BackendTable(checkpoint.Config, Create, Clock, Changes.Add, metrics: null, random: new Random(checkpoint.Seed),
            drawSecret: () => drawn.TryDequeue(out var s) ? Convert.FromBase64String(s) : Balancing.Affinity.NewSecret(), checkpoint: c)
        {
            Answered = (p, pick) =>
            {
                _pickIds.Remove(p, out var id);
                Produced.Enqueue(new JournalEntry.Answered(id, pick.Backend?.Id, pick.Refused));
            },
        };
        _nextId = c.LastRoute;
        foreach (var g in c.Gone) _routes[g.Route] = new BackendRoute(g.Route, g.Url, g.Key, NeverSends) { Address = g.Address };
        foreach (var w in c.Queue)
        {
            var request = new PickRequest(w.Exclude is null ? null : Array.ConvertAll(w.Exclude, Route), Reply<Pick>.Rent(), AbortFor(w.Pick),
                new RequestKey(w.Hash, w.Affinity));
            _pickIds[request] = w.Pick;
            _waiters[w.Pick] = Table.RestoreWaiter(request, w.Enqueued, w.Deadline, w.Id);
        }
    }

    public StateClock Clock { get; }
    public BackendTable Table { get; }
    public int Picks { get; private set; }

    /// <summary>The answers given and not yet compared.</summary>
    public Queue<JournalEntry> Produced { get; } = new();

    /// <summary>Every state change the replay made, as the live table logged them.</summary>
    public List<StateChange> Changes { get; } = [];

    /// <summary>Picks whose clients the journal shows leaving (a Cancelled answer): each gets an
    /// abort token, cancelled just before the input after which the live table saw it.</summary>
    public CancellationToken AbortFor(long pick)
    {
        if (!_aborts.TryGetValue(pick, out var cts)) _aborts[pick] = cts = new CancellationTokenSource();
        return cts.Token;
    }

    public void Abort(long pick) => _aborts.GetValueOrDefault(pick)?.Cancel();

    public void Pick(long id, int[]? exclude, RequestKey key)
    {
        Picks++;
        var request = new PickRequest(exclude is null ? null : Array.ConvertAll(exclude, Route), Reply<Pick>.Rent(), AbortFor(id), key);
        _pickIds[request] = id;
        if (Table.Pick(request) is { } waiter) _waiters[id] = waiter;
    }

    public void Cancel(long id)
    {
        if (_waiters.Remove(id, out var waiter)) Table.Apply(new PickCancelled(waiter));
    }

    BackendRoute Create(BackendConfig b, PoolConfig pool)
    {
        var id = _restoredIds.TryDequeue(out var restored) ? restored : ++_nextId;
        var route = new BackendRoute(id, b.Url, b.Key, NeverSends) { Protocol = b.Protocol, Tls = b.Tls, Address = b.Address };
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

    sealed class NoNetwork : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a replay sends nothing");
    }
}
