using LoadBalancer.Balancing;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Pipeline;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Balancing;

// Cookie affinity in the table: tokens are HMACs of the backend under the shared secret, so two
// balancers agree; anything else (forged, foreign, for a backend that is down or already tried)
// is picked normally and gets a new cookie, and changes no backend's state.
public sealed class AffinityTests
{
    static readonly string[] Urls = ["http://a:1", "http://b:1", "http://c:1"];
    readonly FakeTimeProvider _time = new();
    readonly RouteFactory _routes = new();

    BackendTable Table(string? secret = "s3cret", string balancing = BalancingNames.RoundRobin) =>
        new(TestConfigs.Create(Urls) with { Balancing = balancing, Affinity = new AffinityConfig("lb", secret, null) }, _routes.Create, _time, _ => { });

    static Pick Pick(BackendTable table, string? cookie, BackendRoute[]? exclude = null)
    {
        var pick = table.Choose(exclude, new RequestKey(null, cookie));
        table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
        return pick;
    }

    [Fact]
    public void Token_SameSecretSameBackend_SameInEveryBalancer()
    {
        var one = Table();
        var other = new BackendTable(TestConfigs.Create(Urls) with { Affinity = new AffinityConfig("lb", "s3cret", null) }, new RouteFactory().Create, _time, _ => { });
        Assert.Equal(one.Entries.Select(e => e.AffinityToken), other.Entries.Select(e => e.AffinityToken));
        Assert.Equal(3, one.Entries.Select(e => e.AffinityToken).Distinct().Count());
        Assert.All(one.Entries, e => Assert.Equal(Affinity.TokenLength, e.AffinityToken!.Length));

        // A cookie set by one balancer sends the client to the same backend through the other.
        var first = Pick(one, null);
        Assert.NotNull(first.SetAffinity);
        for (var i = 0; i < 5; i++)
        {
            var through = Pick(other, first.SetAffinity);
            Assert.Equal(first.Backend!.Identity, through.Backend!.Identity);
            Assert.Null(through.SetAffinity); // its cookie already says so
        }
    }

    [Fact]
    public void Token_OtherSecret_IsForeignAndIgnored()
    {
        var mine = Table("one");
        var theirs = Table("two");
        var foreign = theirs.Entries[2].AffinityToken!;
        var picks = Enumerable.Range(0, 3).Select(_ => Pick(mine, foreign)).ToList();
        Assert.All(picks, p => Assert.NotNull(p.SetAffinity)); // each gets a cookie of this balancer
        Assert.Equal(3, picks.Select(p => p.Backend!.Url).Distinct().Count()); // round-robin as without a cookie
    }

    [Fact]
    public void Choose_ForgedCookies_PickedNormallyNewCookieNoStateChanges()
    {
        var table = Table();
        var changes = new List<StateChange>();
        var forged = new[] { new string('A', Affinity.TokenLength), table.Entries[0].AffinityToken![..42] + "x", "", new string('x', 100_000) };
        foreach (var cookie in forged)
        {
            var pick = Pick(table, cookie);
            Assert.NotNull(pick.SetAffinity);
            Assert.Equal(table.Entries.Single(e => e.Route == pick.Backend).AffinityToken, pick.SetAffinity);
        }
        Assert.All(table.Entries, e => Assert.Equal(BackendHealth.Unknown, e.State));
        Assert.All(table.Entries, e => Assert.Equal(0, e.Failures));
    }

    [Fact]
    public void Choose_StickyBackendDownOrTried_PickedAnewWithANewCookie()
    {
        var table = Table();
        var b = table.Entries[1];
        Assert.Same(b.Route, Pick(table, b.AffinityToken).Backend);

        var retry = Pick(table, b.AffinityToken, exclude: [b.Route]); // a retry never goes back
        Assert.NotSame(b.Route, retry.Backend);
        Assert.Equal(table.Entries.Single(e => e.Route == retry.Backend).AffinityToken, retry.SetAffinity);

        for (var i = 0; i < 2; i++)
            table.Apply(new ProbeResult(b.Route, _time.GetUtcNow(), 500, TimeSpan.Zero, null)); // unhealthy
        var moved = Pick(table, b.AffinityToken);
        Assert.NotSame(b.Route, moved.Backend);
        Assert.NotNull(moved.SetAffinity);
    }

    [Fact]
    public void Choose_AffinityOff_NoCookie()
    {
        var table = new BackendTable(TestConfigs.Create(Urls), _routes.Create, _time, _ => { });
        Assert.Null(Pick(table, new string('A', Affinity.TokenLength)).SetAffinity);
    }

    [Fact]
    public void Choose_AffinityOverConsistentHash_CookieWinsOverTheKey()
    {
        var table = Table(balancing: BalancingNames.ConsistentHash);
        var key = KeyHash.Of("user-1");
        var home = table.Choose(null, new RequestKey(key, null)).Backend!;
        table.Apply(new RequestOutcome(home, Outcome.Response, 200));
        var other = table.Entries.First(e => e.Route != home);
        var pick = table.Choose(null, new RequestKey(key, other.AffinityToken));
        Assert.Same(other.Route, pick.Backend);
    }

    [Fact]
    public void Reconcile_SecretChanged_TokensChange()
    {
        var table = Table("one");
        var before = table.Entries.Select(e => e.AffinityToken).ToArray();
        table.Reconcile(table.Config with { Affinity = new AffinityConfig("lb", "two", null) });
        Assert.All(table.Entries.Select(e => e.AffinityToken).Zip(before), p => Assert.NotEqual(p.Second, p.First));
    }
}
