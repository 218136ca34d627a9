using System.Text.Json;
using LoadBalancer.Admin;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Discovery;

// MembershipChanged in the table, reconciled as a reload is: addresses that stay keep their
// state, new ones start unknown, vanished ones drain and their pool closes when they are done;
// a failed lookup keeps the last addresses and marks them stale in /status.
public sealed class BackendTableDiscoveryTests
{
    readonly FakeTimeProvider _time = new();
    readonly RouteFactory _routes = new();
    readonly List<StateChange> _changes = [];
    static readonly BackendConfig Web = TestConfigs.Backend("http://web.test:8080") with { Discover = true };
    static readonly BackendConfig Fixed = TestConfigs.Backend("http://127.0.0.1:9000");

    BackendTable Table() => new(TestConfigs.Create(Fixed, Web), _routes.Create, _time, _changes.Add);

    static BackendEntry At(BackendTable t, string address) => t.Entries.Single(e => e.Route.Address == address);

    static async Task<JsonElement> StatusJson(BackendTable t)
    {
        using var stream = new MemoryStream();
        await AdminEndpoints.WriteStatusAsync(stream, t.Snapshot());
        return JsonDocument.Parse(stream.ToArray()).RootElement;
    }

    [Fact]
    public void Apply_Addresses_EachOneBackendUnknownWithTheUrlAsInLbJson()
    {
        var t = Table();
        Assert.Single(t.Entries); // not resolved yet: only the fixed backend
        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080", "10.0.0.2:8080"], null));
        Assert.Equal(["http://127.0.0.1:9000", "http://web.test:8080", "http://web.test:8080"], t.Entries.Select(e => e.Route.Url));
        Assert.Equal([null, "10.0.0.1:8080", "10.0.0.2:8080"], t.Entries.Select(e => e.Route.Address));
        Assert.All(t.Entries, e => Assert.Equal(BackendHealth.Unknown, e.State));
        Assert.Equal(["discovered at 10.0.0.1:8080 [discovery]", "discovered at 10.0.0.2:8080 [discovery]"], _changes.Select(c => c.Reason));
    }

    [Fact]
    public void Apply_AddressesChange_SurvivorKeepsStateNewUnknownVanishedDrainsThenGoes()
    {
        var t = Table();
        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080", "10.0.0.2:8080"], null));
        var stays = At(t, "10.0.0.1:8080");
        var goes = At(t, "10.0.0.2:8080");
        t.Apply(new ProbeResult(stays.Route, _time.GetUtcNow(), 200, TimeSpan.Zero, null));
        var inFlight = PickUntil(t, goes.Route); // one request still running on the vanishing address
        stays.Requests = 7;

        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080", "10.0.0.3:8080"], null));
        Assert.Same(stays, At(t, "10.0.0.1:8080"));
        Assert.Equal(BackendHealth.Healthy, stays.State);
        Assert.Equal(7, stays.Requests);
        Assert.Equal(BackendHealth.Unknown, At(t, "10.0.0.3:8080").State);
        Assert.Equal(BackendHealth.Draining, goes.State);
        Assert.Equal("10.0.0.2:8080 is no longer in DNS; 1 requests in flight [discovery]", goes.LastChange!.Reason);
        Assert.False(_routes.IsDisposed(goes.Route));

        t.Apply(new RequestOutcome(inFlight, Outcome.Response, 200));
        Assert.DoesNotContain(goes, t.Entries);
        Assert.True(_routes.IsDisposed(goes.Route)); // its pool, and so its connections, closed when drained
    }

    [Fact]
    public async Task Apply_FailedLookup_KeepsTheLastAddressesMarkedStaleUntilOneAnswers()
    {
        var t = Table();
        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080"], null));
        var entry = At(t, "10.0.0.1:8080");
        t.Apply(new MembershipChanged(Web.Key, null, "Server Failure"));
        Assert.Same(entry, At(t, "10.0.0.1:8080"));
        Assert.Equal(BackendHealth.Unknown, entry.State); // a lookup never changes a backend's state

        var status = await StatusJson(t);
        var web = status.GetProperty("backends")[1];
        Assert.Equal("http://web.test:8080", web.GetProperty("url").GetString());
        Assert.Equal("10.0.0.1:8080", web.GetProperty("address").GetString());
        Assert.True(web.GetProperty("discovery").GetProperty("stale").GetBoolean());
        Assert.Equal("Server Failure", web.GetProperty("discovery").GetProperty("error").GetString());
        Assert.False(status.GetProperty("backends")[0].TryGetProperty("discovery", out _)); // a fixed backend has none

        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080"], null));
        var again = (await StatusJson(t)).GetProperty("backends")[1].GetProperty("discovery");
        Assert.False(again.GetProperty("stale").GetBoolean());
        Assert.Equal(JsonValueKind.Null, again.GetProperty("error").ValueKind);
    }

    [Fact]
    public void Reconcile_Reload_KeepsDiscoveredAddressesAndRemovingTheBackendDrainsThem()
    {
        var t = Table();
        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080"], null));
        var entry = At(t, "10.0.0.1:8080");
        t.Reconcile(t.Config with { Retries = 1 });
        Assert.Same(entry, At(t, "10.0.0.1:8080"));

        t.Reconcile(t.Config with { Backends = [Fixed] });
        Assert.DoesNotContain(entry, t.Entries);
        Assert.Contains(_changes, c => c.Backend == entry.Route && c.Reason.StartsWith("removed from the configuration", StringComparison.Ordinal));
        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080"], null)); // a late answer for a backend no longer configured
        Assert.Single(t.Entries);
    }

    [Fact]
    public void Choose_RetryExcludesTheTriedAddressOnly()
    {
        var t = Table();
        t.Reconcile(t.Config with { Backends = [Web] });
        t.Apply(new MembershipChanged(Web.Key, ["10.0.0.1:8080", "10.0.0.2:8080"], null));
        var first = t.Choose(null).Backend!;
        var retry = t.Choose([first]).Backend!;
        Assert.NotNull(retry);
        Assert.NotEqual(first.Address, retry.Address); // same URL, another address
    }

    static BackendRoute PickUntil(BackendTable t, BackendRoute wanted)
    {
        for (var i = 0; i < 10; i++)
        {
            var pick = t.Choose(null).Backend!;
            if (pick == wanted) return pick;
            t.Apply(new RequestOutcome(pick, Outcome.Response, 200));
        }
        throw new InvalidOperationException("never picked");
    }
}
