namespace LoadBalancer.Tests.Hostile;

// Contract, issue 7: "a request with both Content-Length and Transfer-Encoding is either
// rejected (400) or forwarded with chunked framing only (Content-Length removed); either way the
// client connection is closed after the response, and a request hidden in its body never
// reaches a backend as a request. A Transfer-Encoding other than exactly chunked gets 400 or
// 501, the connection is closed, and nothing of it reaches a backend."
// Every hidden request is GET /smuggled; the client never half-closes (Kestrel would take that
// for a client gone away), so a connection that ends was closed by the balancer.
public sealed class SmugglingTests
{
    const string Hidden = "GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n";

    static string Chunk(string data) => $"{data.Length:x}\r\n{data}\r\n";

    // Layout, the framing headers and body, and the body a backend should get if it is forwarded.
    public static TheoryData<string, string, string> ContentLengthAndChunked()
    {
        const string last = "0\r\n\r\n";
        var afterLastChunk = last + Hidden;          // by chunked framing, Hidden is the next request
        var inChunk = Chunk(Hidden) + last;           // by Content-Length: 4, Hidden is the next request
        return new()
        {
            { "CL covers everything, hidden request after the last chunk",
                $"Content-Length: {afterLastChunk.Length}\r\nTransfer-Encoding: chunked\r\n\r\n{afterLastChunk}", "" },
            { "TE first, then CL covering everything",
                $"Transfer-Encoding: chunked\r\nContent-Length: {afterLastChunk.Length}\r\n\r\n{afterLastChunk}", "" },
            { "CL 4, hidden request inside the chunk",
                $"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{inChunk}", Hidden },
            { "CL 0, hidden request after the last chunk",
                $"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n{afterLastChunk}", "" },
        };
    }

    [Theory]
    [MemberData(nameof(ContentLengthAndChunked))]
    public async Task Post_ContentLengthAndChunked_RejectedOrForwardedChunkedThenClosed(string layout, string framingAndBody, string chunkedBody)
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync($"POST /hostile HTTP/1.1\r\nHost: example.com\r\n{framingAndBody}"));

        // Either answer the contract allows: 400 and nothing forwarded, or the POST forwarded with
        // chunked framing only (no Content-Length) and the chunks' data as its body.
        var posts = h.HostileSeen.Where(s => s.Target == "/hostile").ToList();
        var final = exchange.Final;
        if (final?.Status == 400)
        {
            h.ExpectNothingForwarded($"{layout}: answered 400, yet the POST");
        }
        else
        {
            h.Expect(final?.Status == 200 && posts.Count == 1 && posts[0].Header("Content-Length") is null && posts[0].Body == chunkedBody,
                $"{layout}: expected 400, or 200 with the POST forwarded without Content-Length and the chunks' data as its body; got {exchange}; "
                + "backends saw:\n    " + string.Join("\n    ", h.HostileSeen));
        }
        h.Expect(exchange.Finals.Count == 1 && exchange.Closed && !exchange.Reset,
            $"{layout}: expected one response, then the connection closed by the balancer; got {exchange}");
        h.Expect(final?.Header("Connection")?.Contains("close", StringComparison.OrdinalIgnoreCase) == true,
            $"{layout}: expected Connection: close on the response, got {final}");
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }

    [Theory]
    [InlineData("gzip, chunked")]
    [InlineData("chunked, chunked")]
    [InlineData("xchunked")]
    [InlineData("chunked, identity")]
    [InlineData("identity")]
    public async Task Post_TransferEncodingNotExactlyChunked_400Or501ClosedAndNothingForwarded(string transferEncoding)
    {
        await using var h = await HostileHarness.StartAsync();
        // The hidden request is both inside the chunk and after the last chunk.
        var body = Chunk(Hidden) + "0\r\n\r\n" + Hidden;

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync($"POST /hostile HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: {transferEncoding}\r\n\r\n{body}"));

        h.Expect(exchange.Final?.Status is 400 or 501 && exchange.Finals.Count == 1 && exchange.Closed,
            $"Transfer-Encoding: {transferEncoding}: expected one 400 or 501, then the connection closed; got {exchange}");
        h.ExpectNothingForwarded($"Transfer-Encoding: {transferEncoding}");
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }

    [Fact]
    public async Task Post_TwoTransferEncodingLines_400Or501ClosedAndNothingForwarded()
    {
        await using var h = await HostileHarness.StartAsync();
        var body = Chunk(Hidden) + "0\r\n\r\n" + Hidden;

        var exchange = await h.UnderFireAsync(() => h.SendRawAsync(
            $"POST /hostile HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n{body}"));

        h.Expect(exchange.Final?.Status is 400 or 501 && exchange.Finals.Count == 1 && exchange.Closed,
            $"two Transfer-Encoding lines: expected one 400 or 501, then the connection closed; got {exchange}");
        h.ExpectNothingForwarded("two Transfer-Encoding lines");
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }

    // Values that mean "chunked" once optional whitespace and case are set aside (Kestrel trims
    // them): the request may be refused, or forwarded with its chunk data as the body; the
    // request inside the chunk never reaches a backend as a request.
    [Theory]
    [InlineData(" chunked")]
    [InlineData("chunked ")]
    [InlineData("\tchunked")]
    [InlineData("Chunked")]
    public async Task Post_TransferEncodingChunkedWithWhitespaceOrCase_NeverSmuggled(string transferEncoding)
    {
        await using var h = await HostileHarness.StartAsync();
        var body = Chunk(Hidden) + "0\r\n\r\n";

        var exchange = await h.UnderFireAsync(() => h.SendRawAsync(
            $"POST /hostile HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding:{transferEncoding}\r\nConnection: close\r\n\r\n{body}"));

        var what = $"Transfer-Encoding:{RawExchange.Escape(transferEncoding)}";
        var final = exchange.Final;
        if (final?.Status is (>= 400 and < 500) or 501)
        {
            h.ExpectNothingForwarded($"{what}: answered {final.Status}, yet the POST");
        }
        else
        {
            var posts = h.HostileSeen;
            h.Expect(final?.Status == 200 && posts.Count == 1 && posts[0].Method == "POST" && posts[0].Body == Hidden,
                $"{what}: expected 4xx/501, or 200 with the chunk data forwarded as the body; got {exchange}; backends saw:\n    "
                + string.Join("\n    ", posts));
        }
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }

    // Content-Length must be digits only (RFC 9110 8.6), one value: anything else is malformed
    // framing, refused with a 4xx; the request hidden after the first 4 bytes is never read.
    [Theory]
    [InlineData("Content-Length: -4")]
    [InlineData("Content-Length: 4, 50")]
    [InlineData("Content-Length: 4\r\nContent-Length: 50")]
    [InlineData("Content-Length: 0x4")]
    [InlineData("Content-Length: 4 4")]
    [InlineData("Content-Length: 4.0")]
    [InlineData("Content-Length: 4\r\n 50")]
    public async Task Post_MalformedContentLength_4xxClosedAndNothingForwarded(string contentLength)
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync($"POST /hostile HTTP/1.1\r\nHost: example.com\r\n{contentLength}\r\n\r\na=1&{Hidden}"));

        var what = RawExchange.Escape(contentLength);
        h.Expect(exchange.Final?.Status is >= 400 and < 500 && exchange.Finals.Count == 1 && exchange.Closed,
            $"{what}: expected one 4xx, then the connection closed; got {exchange}");
        h.ExpectNothingForwarded(what);
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }

    // "+4" is not 1*DIGIT, and nginx answers 400. Kestrel reads it as 4 and keeps only the number
    // (the app sees "Content-Length: 4"), so the balancer cannot tell; what it can hold is that
    // the backend frames the request exactly as Kestrel did: Content-Length 4, the 4 bytes as the
    // body, and what follows as the client's next request on its own (pipelining, not smuggling:
    // balancer and backend agree on every boundary).
    [Fact]
    public async Task Post_ContentLengthWithPlusSign_BackendGetsTheSameFramingAsTheBalancer()
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() =>
            h.SendRawAsync($"POST /hostile HTTP/1.1\r\nHost: example.com\r\nContent-Length: +4\r\n\r\na=1&GET /next HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"));

        var seen = h.HostileSeen;
        h.Expect(exchange.Finals.Count == 2 && exchange.Finals.All(f => f.Status == 200), $"+4: expected two 200s, got {exchange}");
        // Two requests, on whichever backends round-robin chose (HostileSeen lists backend by backend).
        h.Expect(seen.Count == 2
                 && seen.Any(x => x.Target == "/hostile" && x.Headers.GetValueOrDefault("Content-Length") == "4")
                 && seen.Any(x => x.Target == "/next"),
            $"+4: the backends saw {string.Join("; ", seen.Select(x => $"{x.Method} {x.Target} CL={x.Headers.GetValueOrDefault("Content-Length")}"))}");
        await h.VerifyAsync();
    }

    // A chunk size that is not a size: Kestrel refuses the body (400) or the request breaks off
    // mid-body. The backend may have seen the request start, but it is never its failure.
    [Theory]
    [InlineData("zz")]
    [InlineData("-1")]
    [InlineData("ffffffffffffffffff")]
    [InlineData("5 5")]
    public async Task Post_InvalidChunkSize_400OrBrokenNeverCountedAgainstBackend(string size)
    {
        await using var h = await HostileHarness.StartAsync();

        var exchange = await h.UnderFireAsync(() => h.SendRawAsync(
            $"POST /hostile HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\n{Hidden}\r\n0\r\n\r\n"));

        // A 2xx would mean the body passed as valid; a 5xx would blame a backend.
        var final = exchange.Final;
        h.Expect(final is null ? exchange.Closed : final.Status is >= 400 and < 500,
            $"chunk size {size}: expected a 4xx or the connection broken off, got {exchange}");
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }
}
