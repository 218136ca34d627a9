using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// The strict /metrics reader the admin tests rely on: it must reject what a scraper rejects,
// or those tests could not fail.
public sealed class PrometheusTextTests
{
    const string Valid = """
        # HELP lb_requests Responses \\ by backend.\nSecond line.
        # TYPE lb_requests gauge
        lb_requests{backend="http://h:1/",code="200"} 3
        lb_requests{backend="a \"quoted\" \\ back\nslash",code="503"} 1e3
        # a comment
        # TYPE lb_latency_seconds histogram
        lb_latency_seconds_sum{backend="x"} 0.25
        lb_latency_seconds_count{backend="x"} 2
        lb_latency_seconds_bucket{backend="x",le="0.1"} 1
        lb_latency_seconds_bucket{backend="x",le="+Inf"} 2

        """;

    [Fact]
    public void Parse_ValidExposition_ReadsFamiliesSamplesAndEscapes()
    {
        var metrics = PrometheusText.Parse(Valid.ReplaceLineEndings("\n"));

        var requests = metrics.Family("lb_requests");
        Assert.Equal("gauge", requests.Type);
        Assert.Equal(3, requests.Single("lb_requests", ("backend", "http://h:1/"), ("code", "200")).Value);
        Assert.Equal(1000, requests.Single("lb_requests", ("backend", "a \"quoted\" \\ back\nslash")).Value);
        Assert.Equal(2, metrics.Family("lb_latency_seconds").Single("lb_latency_seconds_count").Value);
    }

    [Theory]
    [InlineData("lb_x 1\n", "no TYPE")]
    [InlineData("# TYPE lb_x gauge\nlb_x{a=\"1\"} 1", "end with")]
    [InlineData("# TYPE lb_x gauge\nlb_x{a=\"\\q\"} 1\n", "bad escape")]
    [InlineData("# TYPE lb_x gauge\nlb_x{a=unquoted} 1\n", "quoted")]
    [InlineData("# TYPE lb_x gauge\nlb_x{a=\"1\"} one\n", "not a number")]
    [InlineData("# TYPE lb_x gauge\nlb_x{a=\"1\"} 1\nlb_x{a=\"1\"} 2\n", "twice")]
    [InlineData("# TYPE lb_x gauge\n# TYPE lb_y gauge\nlb_x 1\nlb_y 1\nlb_x{a=\"2\"} 1\n", "contiguous")]
    [InlineData("# TYPE lb_x meter\nlb_x 1\n", "unknown type")]
    [InlineData("# TYPE lb_h histogram\nlb_h_sum 1\nlb_h_count 2\nlb_h_bucket{le=\"1\"} 1\n", "+Inf")]
    [InlineData("# TYPE lb_h histogram\nlb_h_sum 1\nlb_h_count 2\nlb_h_bucket{le=\"1\"} 1\nlb_h_bucket{le=\"+Inf\"} 3\n", "_count")]
    [InlineData("# TYPE 9lb gauge\n", "metric name")]
    public void Parse_InvalidExposition_Throws(string text, string problem)
    {
        var e = Assert.Throws<FormatException>(() => PrometheusText.Parse(text));

        Assert.Contains(problem, e.Message);
    }
}
