using LoadBalancer.Admin;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace LoadBalancer.Tests.Admin;

// The request-duration histogram is recorded by every request handler: it must cost no
// allocation once a series exists, with OpenTelemetry's SDK listening as it does in the app.
public sealed class LbMetricsTests
{
    sealed class NullExporter : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch) => ExportResult.Success;
    }

    [Fact]
    public void Request_SeriesExists_RecordingAllocatesNothing()
    {
        var name = $"LoadBalancer.Test.{Guid.NewGuid():N}";
        using var metrics = new LbMetrics(name);
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter(name)
            .AddReader(new BaseExportingMetricReader(new NullExporter())).Build();
        const string backend = "http://127.0.0.1:8000";
        void RecordSome()
        {
            for (var i = 0; i < 1000; i++)
            {
                metrics.Request(backend, 200, TimeSpan.FromMilliseconds(3));
                metrics.Request(null, 503, TimeSpan.FromMilliseconds(1));
            }
        }
        RecordSome(); // the series are created here

        var before = GC.GetAllocatedBytesForCurrentThread();
        RecordSome();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }
}
