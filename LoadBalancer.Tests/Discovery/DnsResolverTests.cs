using LoadBalancer.Configuration;
using LoadBalancer.Discovery;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Pipeline;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Discovery;

// The resolver stage without the host, against a real DNS server (TestDnsServer) through the real
// DnsClient: the test plays the state task, answering the plan request and reading what the
// stage tells. Each round is awaited; the fake clock decides what is due.
public sealed class DnsResolverTests : IAsyncDisposable
{
    readonly TestDnsServer _dns = TestDnsServer.Start();
    readonly FakeTimeProvider _time = new();
    readonly PipelineChannels _channels = new();
    readonly LogSink _logs = new();
    readonly DnsResolver _resolver;
    readonly BackendConfig _web = TestConfigs.Backend("http://web.test:8080") with { Discover = true };

    public DnsResolverTests()
    {
        var factory = LoggerFactory.Create(l => l.AddProvider(_logs).SetMinimumLevel(LogLevel.Debug));
        _resolver = new DnsResolver(new StateClient(_channels), _time, factory.CreateLogger<DnsResolver>());
    }

    DiscoveryPlan Plan(TimeSpan? interval = null) =>
        new([_web], new DiscoveryConfig(interval ?? TimeSpan.FromSeconds(10), _dns.Nameserver));

    /// <summary>One round: answers its plan request, returns what it told (nothing when no host was due).</summary>
    async Task<MembershipChanged[]> RoundAsync(DiscoveryPlan? plan = null)
    {
        var round = _resolver.RoundAsync(CancellationToken.None);
        var ask = (DiscoveryPlanRequest)await _channels.Requests.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        ask.Reply.SetResult(plan ?? Plan());
        await round.WaitAsync(TimeSpan.FromSeconds(10));
        var told = new List<MembershipChanged>();
        while (_channels.Events.Reader.TryRead(out var e)) told.Add((MembershipChanged)e);
        return [.. told];
    }

    [Fact]
    public async Task Round_AAndAaaaRecords_EachAddressWithTheUrlsPortSorted()
    {
        _dns.Set("web.test", "10.0.0.2", "10.0.0.1", "fd00::1");
        var told = Assert.Single(await RoundAsync());
        Assert.Equal(_web.Key, told.Backend);
        Assert.Equal(["10.0.0.1:8080", "10.0.0.2:8080", "[fd00::1]:8080"], told.Addresses!);
        Assert.Null(told.Error);
    }

    [Fact]
    public async Task Round_ShortTtl_LooksAgainAfterTheTtlNotBefore()
    {
        _dns.Set("web.test", new TestDnsServer.Zone([System.Net.IPAddress.Parse("10.0.0.1")], Ttl: 3));
        await RoundAsync();
        var asked = _dns.Questions;

        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Empty(await RoundAsync()); // not due yet
        Assert.Equal(asked, _dns.Questions);

        _dns.Set("web.test", new TestDnsServer.Zone([System.Net.IPAddress.Parse("10.0.0.9")], Ttl: 300));
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(["10.0.0.9:8080"], Assert.Single(await RoundAsync()).Addresses!); // after 3 s: the TTL

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.Empty(await RoundAsync()); // a long TTL waits for the interval (10 s), no longer
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Single(await RoundAsync());
    }

    [Fact]
    public async Task Round_ZeroTtl_NoSoonerThanTheFloor()
    {
        _dns.Set("web.test", new TestDnsServer.Zone([System.Net.IPAddress.Parse("10.0.0.1")], Ttl: 0));
        await RoundAsync();
        _time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Empty(await RoundAsync());
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Single(await RoundAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Round_ServerFailsOrNameUnknown_ToldAsAFailureWithTheError(bool fail)
    {
        if (fail) _dns.Set("web.test", new TestDnsServer.Zone([], Fail: true));
        var told = Assert.Single(await RoundAsync());
        Assert.Null(told.Addresses);
        Assert.False(string.IsNullOrEmpty(told.Error));
        await _logs.WaitForAsync("DNS lookup of web.test failed");
    }

    [Fact]
    public async Task Round_NoRecords_ToldAsAFailure()
    {
        _dns.Set("web.test", new TestDnsServer.Zone([]));
        var told = Assert.Single(await RoundAsync());
        Assert.Null(told.Addresses);
        Assert.Equal("no A or AAAA records", told.Error);
    }

    // Hostile: an answer with thousands of records (over TCP, as it is too big for UDP) becomes
    // at most MaxAddresses backends, the same ones in every balancer (the lowest, sorted), logged.
    [Fact]
    public async Task Round_ThousandsOfRecords_CappedAndLogged()
    {
        var many = Enumerable.Range(0, 3000).Select(i => System.Net.IPAddress.Parse($"10.{i / 65536}.{i / 256 % 256}.{i % 256}")).ToArray();
        _dns.Set("web.test", new TestDnsServer.Zone(many));
        var told = Assert.Single(await RoundAsync());
        Assert.Equal(DnsResolver.MaxAddresses, told.Addresses!.Length);
        Assert.Equal(told.Addresses.Order(StringComparer.Ordinal), told.Addresses);
        await _logs.WaitForAsync($"has 3000 addresses; only the first {DnsResolver.MaxAddresses}");
    }

    [Fact]
    public async Task Round_NoDiscoveredBackends_AsksNothing()
    {
        Assert.Empty(await RoundAsync(new DiscoveryPlan([], DiscoveryConfig.Default)));
        Assert.Equal(0, _dns.Questions);
    }

    [Fact]
    public void Clamp_TtlBetweenFloorAndInterval()
    {
        var interval = TimeSpan.FromSeconds(10);
        Assert.Equal(TimeSpan.FromSeconds(1), DnsResolver.Clamp(TimeSpan.Zero, interval));
        Assert.Equal(TimeSpan.FromSeconds(4), DnsResolver.Clamp(TimeSpan.FromSeconds(4), interval));
        Assert.Equal(interval, DnsResolver.Clamp(TimeSpan.FromHours(1), interval));
    }

    public async ValueTask DisposeAsync()
    {
        _resolver.Dispose();
        await _dns.DisposeAsync();
    }
}
