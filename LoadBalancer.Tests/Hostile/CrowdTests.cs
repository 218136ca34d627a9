namespace LoadBalancer.Tests.Hostile;

// Contract, issue 7: "many such clients at once: other clients see no errors meanwhile".
// CONNECTs, Content-Length + chunked smuggling attempts and "gzip, chunked" bodies, all at once,
// each on its own connection, while the well-behaved client keeps sending GETs.
public sealed class CrowdTests
{
    const string Hidden = "GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n";
    const string AfterLastChunk = "0\r\n\r\n" + Hidden;

    [Fact]
    public async Task ManyHostileClientsAtOnce_EachRefusedAndNoOtherClientSeesAnError()
    {
        await using var h = await HostileHarness.StartAsync();
        var requests =
            Enumerable.Repeat(("CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), 50)
            .Concat(Enumerable.Repeat(("CL+TE",
                $"POST /crowd HTTP/1.1\r\nHost: example.com\r\nContent-Length: {AfterLastChunk.Length}\r\nTransfer-Encoding: chunked\r\n\r\n{AfterLastChunk}"), 50))
            .Concat(Enumerable.Repeat(("gzip, chunked",
                $"POST /crowd HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n{AfterLastChunk}"), 20))
            .ToList();

        var exchanges = await h.UnderFireAsync(() =>
            Task.WhenAll(requests.Select(r => Task.Run(async () => (r.Item1, await h.SendRawAsync(r.Item2))))));

        // The answers the contract allows, each followed by the balancer closing the connection.
        // Reported per kind and outcome (a hundred identical lines would hide the rest).
        var forwardedClTe = exchanges.Count(x => x.Item1 == "CL+TE" && x.Item2.Final?.Status == 200);
        foreach (var kind in exchanges.GroupBy(x => x.Item1))
        {
            var bad = kind.Where(x => !Allowed(kind.Key, x.Item2)).GroupBy(x => Outcome(x.Item2)).ToList();
            h.Expect(bad.Count == 0, $"{kind.Key}: " + string.Join("; ", bad.Select(g => $"{g.Count()} of {kind.Count()} got {g.Key}, e.g. {g.First().Item2}")));
        }
        // Only a CL+TE POST forwarded with chunked framing (no Content-Length) may reach a backend.
        var seen = h.HostileSeen;
        h.Expect(seen.Count == forwardedClTe && seen.All(s => s.Method == "POST" && s.Header("Content-Length") is null),
            $"{forwardedClTe} CL+TE requests were answered 200; backends saw {seen.Count} hostile requests:\n    "
            + string.Join("\n    ", seen.Take(10)));
        h.ExpectNothingSmuggled();
        await h.VerifyAsync();
    }

    static bool Allowed(string kind, RawExchange e)
    {
        var status = e.Final?.Status;
        var allowed = kind switch
        {
            "CONNECT" => status == 501,
            "CL+TE" => status is 400 or 200,
            _ => status is 400 or 501,
        };
        return allowed && e.Finals.Count == 1 && e.Closed;
    }

    static string Outcome(RawExchange e) =>
        $"{e.Final?.Status.ToString() ?? "no response"}, {(e.Finals.Count > 1 ? $"{e.Finals.Count} responses, " : "")}"
        + (e.Closed ? e.Reset ? "then reset" : "then closed" : "connection left open");
}
