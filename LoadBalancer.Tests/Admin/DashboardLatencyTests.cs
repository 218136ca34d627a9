using LoadBalancer.Admin;
using LoadBalancer.Admin.Dashboard;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Admin;

public sealed class DashboardLatencyTests
{
    static LbMetrics NewMetrics() => new($"LoadBalancer.Test.{Guid.NewGuid():N}");

    static long Count(DashboardLatency latency, string backend) =>
        latency.Snapshot().Where(s => s.Backend == backend).Sum(s => s.Counts.Sum());

    [Fact]
    public void Record_CountsOnlyWhileSomeoneLooks()
    {
        using var metrics = NewMetrics();
        var time = new FakeTimeProvider();
        using var latency = new DashboardLatency(metrics, time);

        metrics.Request("http://a", 200, TimeSpan.FromMilliseconds(5));
        Assert.False(latency.On);
        Assert.Equal(0, Count(latency, "http://a")); // nobody looked: nothing done for the dashboard

        latency.Touch();
        metrics.Request("http://a", 200, TimeSpan.FromMilliseconds(5));
        metrics.Request("http://a", 503, TimeSpan.FromMilliseconds(40));
        metrics.Request(null, 503, TimeSpan.FromMilliseconds(1));
        Assert.Equal(2, Count(latency, "http://a"));
        Assert.Equal(1, Count(latency, LbMetrics.NoBackend));

        time.Advance(DashboardLatency.IdleAfter - TimeSpan.FromSeconds(1));
        latency.Touch(); // a poll re-arms the idle timer
        time.Advance(DashboardLatency.IdleAfter - TimeSpan.FromSeconds(1));
        Assert.True(latency.On);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(latency.On);
        metrics.Request("http://a", 200, TimeSpan.FromMilliseconds(5));
        Assert.Equal(2, Count(latency, "http://a")); // the page closed: counting stopped
    }

    [Fact]
    public void Record_PutsEachDurationInItsBucket_AndLeavesOutTunnels()
    {
        using var metrics = NewMetrics();
        using var latency = new DashboardLatency(metrics, new FakeTimeProvider());
        latency.Touch();

        metrics.Request("http://a", 200, TimeSpan.FromMilliseconds(5));
        metrics.Request("http://a", 101, TimeSpan.FromMinutes(5)); // a WebSocket lasts as long as its socket
        metrics.Request("http://a", 200, TimeSpan.FromMinutes(5));

        var counts = latency.Snapshot().Single(s => s.Backend == "http://a").Counts;
        Assert.Equal(DashboardLatency.BoundsMs.Length + 1, counts.Length);
        var five = DashboardLatency.Bucket(5);
        Assert.Equal(1, counts[five]);
        Assert.True(DashboardLatency.BoundsMs[five] >= 5 && (five == 0 || DashboardLatency.BoundsMs[five - 1] < 5));
        Assert.Equal(1, counts[^1]); // above every bound
        Assert.Equal(2, counts.Sum());
    }

    [Fact]
    public void Bounds_AreIncreasing_From50MicrosecondsPastOneMinute()
    {
        var b = DashboardLatency.BoundsMs;
        Assert.Equal(0.05, b[0]);
        Assert.True(b[^1] > 60_000);
        for (var i = 1; i < b.Length; i++) Assert.True(b[i] > b[i - 1] && b[i] <= b[i - 1] * 1.3, $"bound {i}: {b[i - 1]} -> {b[i]}");
    }
}
