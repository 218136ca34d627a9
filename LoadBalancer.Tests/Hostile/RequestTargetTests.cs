namespace LoadBalancer.Tests.Hostile;

// Contract, issue 7: "a request the balancer will not forward (CONNECT, a malformed or
// unsupported target ...) is answered by the balancer itself with a 4xx or 501 and reaches no
// backend". Absolute-form is a supported target: it goes on as origin-form.
public sealed class RequestTargetTests
{
    [Fact]
    public async Task Connect_MoreTimesThanAllBackendsCouldFail_BalancerAnswers501AndClosesEachTime()
    {
        await using var h = await HostileHarness.StartAsync();

        // 12 > 3 backends x consecutiveFailures 3: enough to eject every backend if they counted.
        // One after the other; each connection is then watched for the balancer's close.
        var exchanges = await h.UnderFireAsync(async () =>
        {
            var closes = new List<Task<RawExchange>>();
            for (var i = 0; i < 12; i++)
            {
                var client = await RawClient.ConnectAsync(h.Client);
                await client.SendAsync("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
                await client.ReadFinalResponseAsync(TimeSpan.FromSeconds(10));
                closes.Add(CloseAsync(client));
            }
            return await Task.WhenAll(closes);
        });

        foreach (var (e, i) in exchanges.Select((e, i) => (e, i)))
            h.Expect(e.Final?.Status == 501 && e.Finals.Count == 1 && e.Closed,
                $"CONNECT #{i + 1}: expected one 501 and the connection closed by the balancer, got {e}");
        h.ExpectNothingForwarded("CONNECT");
        await h.VerifyAsync();
    }

    static async Task<RawExchange> CloseAsync(RawClient client)
    {
        await using (client)
            return await client.ReadUntilCloseAsync(TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task Get_AbsoluteFormTarget_ForwardedAsOriginForm()
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync("GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"));

        h.Expect(exchange.Final?.Status == 200 && exchange.Final.Text.StartsWith("backend-", StringComparison.Ordinal),
            $"expected 200 from a backend, got {exchange}");
        var seen = h.HostileSeen;
        h.Expect(seen.Count == 1 && seen[0].Method == "GET" && seen[0].Target == "/x?y=1",
            "expected one GET /x?y=1 at a backend, backends saw:\n    " + string.Join("\n    ", seen));
        await h.VerifyAsync();
    }

    [Fact]
    public async Task Options_AsteriskFormTarget_AnsweredByBalancerWith4xxOr501()
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync("OPTIONS * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"));

        h.Expect(exchange.Final?.Status is (>= 400 and < 500) or 501, $"OPTIONS *: expected 4xx or 501, got {exchange}");
        h.ExpectNothingForwarded("OPTIONS *");
        await h.VerifyAsync();
    }

    [Theory]
    [InlineData("GET /a b HTTP/1.1")]            // a space inside the target
    [InlineData("GET /a\u0001b HTTP/1.1")]       // control characters
    [InlineData("GET /a\u0000b HTTP/1.1")]
    [InlineData("GET /a\u007fb HTTP/1.1")]
    [InlineData("GET /a\u001bb HTTP/1.1")]
    [InlineData("GET /a\tb HTTP/1.1")]
    [InlineData("GET a/b HTTP/1.1")]             // no leading slash
    [InlineData("GET ?q=1 HTTP/1.1")]
    [InlineData("GET example.com:443 HTTP/1.1")] // authority-form on a GET
    public async Task Get_MalformedTarget_AnsweredByBalancerWith4xxOr501(string requestLine)
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync(requestLine + "\r\nHost: example.com\r\nConnection: close\r\n\r\n"));

        var what = RawExchange.Escape(requestLine);
        h.Expect(exchange.Final?.Status is (>= 400 and < 500) or 501, $"{what}: expected 4xx or 501, got {exchange}");
        h.ExpectNothingForwarded(what);
        await h.VerifyAsync();
    }

    // An invalid percent-encoding is no framing risk, and sloppy clients send "/100%": like
    // ForwardingTests' unusual targets, it reaches the backend byte for byte (the backend decides),
    // and harms nothing. A decision, written down: nginx answers 400 here, HAProxy forwards.
    [Theory]
    [InlineData("/%zz")]
    [InlineData("/a%zz/b?c=%z")]
    public async Task Get_InvalidPercentEncoding_ForwardedByteForByteNothingHarmed(string target)
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync($"GET {target} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"));

        h.Expect(exchange.Final?.Status == 200, $"{target}: expected the backend's 200, got {exchange}");
        h.Expect(h.HostileSeen.Count == 1 && h.HostileSeen[0].Target == target,
            $"{target}: the backend saw {string.Join(", ", h.HostileSeen.Select(x => x.Target))}");
        await h.VerifyAsync();
    }
}
