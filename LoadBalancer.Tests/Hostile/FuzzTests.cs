using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Xunit.Abstractions;

namespace LoadBalancer.Tests.Hostile;

// A few thousand malformed HTTP/1.1 requests (HttpFuzzer), each on its own connection, a few at
// a time, while the well-behaved client sends GETs. Whatever the balancer answers each one, at
// the end: no backend changed state or counted a failure, the well-behaved client saw no error,
// no backend ever saw GET /smuggled, no client got an answer to a request hidden after a body,
// every connection ended, and the balancer still answers /healthz.
//
// Replay: LB_FUZZ_SEED=<seed> (and LB_FUZZ_CASES=<count>) dotnet test --filter FuzzTests.
// Each case: send it whole; read the response; a case still open without a whole response
// (an incomplete request) then gets a FIN, which Kestrel takes for a client gone away. The
// client never half-closes before that: Kestrel would abort a complete request on the FIN.
public sealed class FuzzTests(ITestOutputHelper output)
{
    const int DefaultSeed = 20261127;
    const int DefaultCases = 3000;
    const int Concurrency = 16;
    static readonly TimeSpan ResponseWait = TimeSpan.FromSeconds(1);    // a complete request's answer
    static readonly TimeSpan SecondAnswerWait = TimeSpan.FromMilliseconds(500);
    static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(5);      // after our FIN

    sealed record Result(FuzzCase Case, RawExchange Exchange, bool SentAll, bool WeClosed, TimeSpan Elapsed);

    [Fact]
    public async Task Fuzz_MalformedRequests_NoBackendHarmedAndNothingSmuggled()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("LB_FUZZ_SEED"), CultureInfo.InvariantCulture, out var s) ? s : DefaultSeed;
        var count = int.TryParse(Environment.GetEnvironmentVariable("LB_FUZZ_CASES"), CultureInfo.InvariantCulture, out var c) ? c : DefaultCases;
        var replay = $"fuzz seed {seed}, {count} cases (replay: LB_FUZZ_SEED={seed} LB_FUZZ_CASES={count})";
        output.WriteLine(replay);
        var fuzzer = new HttpFuzzer(seed);
        var cases = Enumerable.Range(0, count).Select(fuzzer.Next).ToList();

        await using var h = await HostileHarness.StartAsync();
        h.Context = replay;
        var results = new ConcurrentBag<Result>();
        var clock = Stopwatch.StartNew();
        await h.UnderFireAsync(() => Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (fuzzCase, _) => results.Add(await RunAsync(h.Client, fuzzCase))));
        var duration = clock.Elapsed;

        var byCase = results.OrderBy(r => r.Case.Index).ToList();
        output.WriteLine($"{count} cases in {duration.TotalSeconds:0.0} s; slowest {byCase.Max(r => r.Elapsed).TotalMilliseconds:0} ms");
        output.WriteLine("answers: " + string.Join(", ", byCase.GroupBy(r => r.Exchange.Final?.Status.ToString() ?? (r.WeClosed ? "none (incomplete)" : "none"))
            .OrderByDescending(g => g.Count()).Select(g => $"{g.Key} x{g.Count()}")));

        // Every connection ended: answered and closed by either side, or closed after our FIN.
        var hung = byCase.Where(r => !r.Exchange.Closed && !r.Exchange.HasCompleteFinal).ToList();
        h.Expect(hung.Count == 0, $"{hung.Count} connections neither answered nor closed {CloseWait.TotalSeconds} s after the client's FIN:"
            + Describe(hung));
        // No answer to a request hidden after a body: the connection should have been closed.
        var answeredHidden = byCase.Where(r => r.Case.HiddenAfterBody && r.Exchange.Finals.Count > 1).ToList();
        h.Expect(answeredHidden.Count == 0, $"{answeredHidden.Count} clients got a second answer (to the request hidden after the body):"
            + Describe(answeredHidden));
        // Answers that blame a backend: each also counts as a passive failure.
        var gateway = byCase.Where(r => r.Exchange.Final?.Status is 502 or 503 or 504).ToList();
        h.Expect(gateway.Count == 0, $"{gateway.Count} requests were answered 502/503/504:" + Describe(gateway));

        var smuggled = h.Backends.SelectMany(b => b.Seen).Where(x => x.Target.Contains("/smuggled", StringComparison.Ordinal)).ToList();
        var smuggledCases = smuggled.Select(x => int.TryParse(x.Target.Split("case=").Last(), out var i) ? i : -1).ToHashSet();
        h.Expect(smuggled.Count == 0, $"backends saw {smuggled.Count} hidden requests as requests:"
            + Describe(byCase.Where(r => smuggledCases.Contains(r.Case.Index)).ToList()));

        var healthz = await h.Lb.Admin.GetAsync("/healthz");
        h.Expect(healthz.StatusCode == HttpStatusCode.OK, $"/healthz answered {(int)healthz.StatusCode} after the fuzz run");
        await h.VerifyAsync();
    }

    static async Task<Result> RunAsync(Uri server, FuzzCase fuzzCase)
    {
        var clock = Stopwatch.StartNew();
        await using var client = await RawClient.ConnectAsync(server);
        var sentAll = await client.SendAsync(fuzzCase.Bytes);
        var exchange = await client.ReadFinalResponseAsync(ResponseWait);
        var weClosed = false;
        if (!exchange.Closed)
        {
            if (exchange.HasCompleteFinal)
            {
                // Answered and left open: a server that misread the framing answers the hidden request now.
                if (fuzzCase.HiddenAfterBody) exchange = await client.ReadUntilCloseAsync(SecondAnswerWait);
            }
            else
            {
                client.ShutdownSend(); // the request is incomplete: nothing more will come
                weClosed = true;
                exchange = await client.ReadUntilCloseAsync(CloseWait);
            }
        }
        return new Result(fuzzCase, exchange, sentAll, weClosed, clock.Elapsed);
    }

    static string Describe(IReadOnlyList<Result> results) =>
        (results.Count == 0 ? "" : "\n    by framing: " + string.Join(", ", results.GroupBy(r => r.Case.Framing).OrderByDescending(g => g.Count())
            .Select(g => $"{g.Key} x{g.Count()}")))
        + string.Concat(results.Take(8).Select(r =>
            $"\n    case {r.Case.Index} ({r.Case.Recipe}): sent \"{RawExchange.Escape(System.Text.Encoding.Latin1.GetString(r.Case.Bytes[..Math.Min(r.Case.Bytes.Length, 300)]))}\""
            + $"{(r.SentAll ? "" : " (not all sent)")}{(r.WeClosed ? ", then FIN" : "")}; got {r.Exchange}"))
        + (results.Count > 8 ? $"\n    ... and {results.Count - 8} more" : "");
}
