using System.Text;

namespace LoadBalancer.Tests.Hostile;

// Kestrel's header limits guard the balancer: too many headers or one huge one get 431 from
// the balancer itself, and nothing of the request reaches a backend (contract, issue 7).
public sealed class HeaderLimitTests
{
    [Fact]
    public async Task Get_ThousandHeaders_431AndNothingForwarded()
    {
        await using var h = await HostileHarness.StartAsync();
        var request = new StringBuilder("GET /hostile HTTP/1.1\r\nHost: example.com\r\n");
        for (var i = 0; i < 1000; i++) request.Append($"X-Header-{i}: {i}\r\n");
        request.Append("\r\n");

        var exchange = await h.UnderFireAsync(() => h.SendRawAsync(request.ToString()));

        h.Expect(exchange.Final?.Status == 431, $"1,000 headers: expected 431, got {exchange}");
        h.ExpectNothingForwarded("1,000 headers");
        await h.VerifyAsync();
    }

    [Fact]
    public async Task Get_OneMiBHeader_431AndNothingForwarded()
    {
        await using var h = await HostileHarness.StartAsync();
        var request = "GET /hostile HTTP/1.1\r\nHost: example.com\r\nX-Huge: " + new string('a', 1024 * 1024) + "\r\n\r\n";

        // Written and read at once: the balancer answers after the first 32 KiB, long before the
        // client is done writing, and then stops reading.
        var exchange = await h.UnderFireAsync(async () =>
        {
            await using var client = await RawClient.ConnectAsync(h.Client);
            var send = client.SendAsync(request);
            var response = await client.ReadUntilCloseAsync(TimeSpan.FromSeconds(5));
            await send;
            return response;
        });

        h.Expect(exchange.Final?.Status == 431, $"a 1 MiB header: expected 431, got {exchange}");
        h.ExpectNothingForwarded("a 1 MiB header");
        await h.VerifyAsync();
    }
}
