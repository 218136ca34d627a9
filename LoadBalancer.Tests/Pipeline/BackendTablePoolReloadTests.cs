using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// A reload that changes pool.*: every backend gets a new route (a new connection pool) and keeps
// its entry (health, counters, in-flight, weight); requests in flight finish on the old route,
// which is disposed when the last of them reports its outcome.
public sealed class BackendTablePoolReloadTests
{
    const string A = "http://a:1", B = "http://b:2";

    readonly FakeTimeProvider _time = new();
    readonly RouteFactory _routes = new();
    readonly Dictionary<BackendRoute, PoolConfig> _poolOf = [];
    readonly List<StateChange> _changes = [];

    // createRoute as BackendPools.Create: it gets the pool settings in force.
    BackendTable Table(LbConfig config) => new(config, (backend, pool) =>
    {
        var route = _routes.Create(backend);
        _poolOf[route] = pool;
        return route;
    }, _time, _changes.Add);

    static LbConfig IdleTimeout(LbConfig config, int seconds) =>
        config with { Pool = config.Pool with { IdleTimeout = TimeSpan.FromSeconds(seconds) } };

    static BackendEntry Entry(BackendTable table, string url) => table.Entries.Single(e => e.Route.Url == url);

    static void Connections(BackendTable table, BackendRoute route, int delta)
    {
        route.Connections.Add(delta);
        table.Apply(new ConnectionsChanged(route));
    }

    [Fact]
    public void Reconcile_PoolChanged_EveryBackendGetsANewRouteWithTheNewPoolAndKeepsItsState()
    {
        var config = TestConfigs.Create(TestConfigs.Backend(A, weight: 3), TestConfigs.Backend(B));
        var table = Table(config);
        var oldA = _routes[A];
        var oldB = _routes[B];
        table.Apply(new ProbeResult(oldA, _time.GetUtcNow(), 200, TimeSpan.FromMilliseconds(1), null));
        table.Apply(new RequestOutcome(table.Choose(null).Backend!, Outcome.ConnectRefused, 0)); // A (weight 3)
        _changes.Clear();
        var next = IdleTimeout(config, 10);

        table.Reconcile(next);

        var a = Entry(table, A);
        Assert.NotSame(oldA, a.Route);
        Assert.NotSame(oldB, Entry(table, B).Route);
        Assert.Equal(next.Pool, _poolOf[a.Route]);
        Assert.Equal(next.Pool, _poolOf[Entry(table, B).Route]);
        Assert.Equal(oldA.Key, a.Route.Key);
        Assert.Equal((BackendHealth.Healthy, 1L, 1L, 1, 3), (a.State, a.Requests, a.Failures, a.ConsecutiveFailures, a.Weight));
        Assert.True(_routes.IsDisposed(oldA)); // nothing in flight on them: disposed at once
        Assert.True(_routes.IsDisposed(oldB));
        Assert.Empty(_changes); // not a state change
        Assert.Equal([a.Route, Entry(table, B).Route], table.ProbePlan().Targets);
    }

    [Fact]
    public void Reconcile_ProtocolOrTlsChanged_ThatBackendGetsANewRouteAndKeepsItsState()
    {
        const string Https = "https://c:443";
        var config = TestConfigs.Create(TestConfigs.Backend(A), TestConfigs.Backend(B), TestConfigs.Backend(Https));
        var table = Table(config);
        var (oldA, oldB, oldC) = (_routes[A], _routes[B], _routes[Https]);
        table.Apply(new ProbeResult(oldA, _time.GetUtcNow(), 200, TimeSpan.FromMilliseconds(1), null));
        var next = config with
        {
            Backends = [config.Backends[0] with { Protocol = BackendProtocol.H2c }, config.Backends[1],
                config.Backends[2] with { Tls = new BackendTlsConfig(null, "api.internal", false) }],
        };

        var changes = table.Reconcile(next);

        Assert.Equal(BackendProtocol.H2c, Entry(table, A).Route.Protocol);
        Assert.Equal(BackendHealth.Healthy, Entry(table, A).State);
        Assert.True(_routes.IsDisposed(oldA));
        Assert.Same(oldB, Entry(table, B).Route); // unchanged: same pool
        Assert.Equal("api.internal", Entry(table, Https).Route.Tls!.ServerName);
        Assert.True(_routes.IsDisposed(oldC));
        Assert.Equal("http://a:1 protocol http1 -> h2c, https://c:443 tls", changes);
    }

    [Fact]
    public void Reconcile_PoolChangedWithARequestInFlight_OldRouteDisposedOnlyWhenItsOutcomeArrives()
    {
        var table = Table(TestConfigs.Create(A));
        var old = table.Choose(null).Backend!;

        table.Reconcile(IdleTimeout(table.Config, 10));

        var a = Entry(table, A);
        Assert.False(_routes.IsDisposed(old));
        Assert.Equal(1, a.InFlight);
        var fresh = table.Choose(null).Backend!;
        Assert.Same(a.Route, fresh);
        Assert.Equal(2, a.InFlight);

        table.Apply(new RequestOutcome(old, Outcome.ConnectRefused, 0)); // same entry, though another route

        Assert.True(_routes.IsDisposed(old));
        Assert.False(_routes.IsDisposed(fresh));
        Assert.Equal((1, 1L, 1), (a.InFlight, a.Failures, a.ConsecutiveFailures));
        table.Apply(new RequestOutcome(fresh, Outcome.Response, 200));
        Assert.Equal((0, 2L, 0), (a.InFlight, a.Requests, a.ConsecutiveFailures));
        Assert.False(_routes.IsDisposed(fresh));
    }

    [Fact]
    public void Reconcile_TwoPoolChangesInARow_EachOldRouteWaitsForItsOwnRequests()
    {
        var table = Table(TestConfigs.Create(A));
        var first = table.Choose(null).Backend!;
        table.Reconcile(IdleTimeout(table.Config, 10));
        var second = table.Choose(null).Backend!;
        table.Reconcile(IdleTimeout(table.Config, 20));
        var third = Entry(table, A).Route;

        table.Apply(new RequestOutcome(second, Outcome.Response, 200));

        Assert.Equal((false, true, false), (_routes.IsDisposed(first), _routes.IsDisposed(second), _routes.IsDisposed(third)));
        table.Apply(new RequestOutcome(first, Outcome.Response, 200));
        Assert.Equal((true, false), (_routes.IsDisposed(first), _routes.IsDisposed(third)));
        Assert.Equal((0, 2L), (Entry(table, A).InFlight, Entry(table, A).Requests));
    }

    [Fact]
    public void Reconcile_PoolChanged_OldPoolsConnectionsCountUntilItIsDisposed()
    {
        var table = Table(TestConfigs.Create(A));
        var old = table.Choose(null).Backend!;
        Connections(table, old, +2);
        table.Reconcile(IdleTimeout(table.Config, 10));
        var a = Entry(table, A);
        Connections(table, a.Route, +1);
        Assert.Equal(3, a.OpenConnections);

        Connections(table, old, -1);
        Assert.Equal(2, a.OpenConnections);
        table.Apply(new RequestOutcome(old, Outcome.Response, 200)); // its pool closes, the last connection with it

        Assert.Equal(1, a.OpenConnections);
        Connections(table, old, -1); // that connection's close note, late: already counted
        Assert.Equal(1, a.OpenConnections);
        Assert.Equal(1, table.Snapshot().Backends.Single().OpenConnections);
    }

    [Fact]
    public void Reconcile_PoolChangedAndUrlSpelledDifferently_KeepsTheUrlUsersSee()
    {
        var table = Table(TestConfigs.Create("http://a:80/"));

        table.Reconcile(IdleTimeout(TestConfigs.Create("http://A"), 10));

        Assert.Equal(2, _routes.Count);
        Assert.Equal("http://a:80/", Assert.Single(table.Snapshot().Backends).Url);
    }

    [Fact]
    public void Choose_ExcludeAfterAPoolReload_StillExcludesTheTriedBackend()
    {
        var table = Table(TestConfigs.Create(A, B));
        var tried = table.Choose(null).Backend!; // A: the first attempt, which failed
        table.Apply(new RequestOutcome(tried, Outcome.ConnectRefused, 0));

        table.Reconcile(IdleTimeout(table.Config, 10)); // A's route is another one now

        for (var i = 0; i < 4; i++)
        {
            var retry = table.Choose([tried]).Backend!;
            Assert.Equal(B, retry.Url);
            table.Apply(new RequestOutcome(retry, Outcome.Response, 200));
        }
    }

    [Fact]
    public void Reconcile_DrainingBackendBackAfterAPoolChange_GetsARouteWithThePoolInForce()
    {
        var table = Table(TestConfigs.Create(A, B));
        table.Apply(new RequestOutcome(table.Choose(null).Backend!, Outcome.Response, 200)); // A
        var oldB = table.Choose(null).Backend!; // B, still in flight
        Assert.Equal(B, oldB.Url);
        table.Reconcile(IdleTimeout(TestConfigs.Create(A), 10)); // B drains (a request is still on it)
        Assert.Same(oldB, Entry(table, B).Route); // a draining backend takes no picks: its pool stays

        var next = IdleTimeout(TestConfigs.Create(A, B), 10);
        table.Reconcile(next); // B back, same pool settings as A's

        Assert.NotSame(oldB, Entry(table, B).Route);
        Assert.Equal(next.Pool, _poolOf[Entry(table, B).Route]);
        Assert.False(_routes.IsDisposed(oldB));
        table.Apply(new RequestOutcome(oldB, Outcome.Response, 200));
        Assert.True(_routes.IsDisposed(oldB));
        Assert.Equal(BackendHealth.Unknown, Entry(table, B).State);
    }
}
