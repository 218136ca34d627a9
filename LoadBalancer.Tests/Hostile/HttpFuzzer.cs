using System.Text;

namespace LoadBalancer.Tests.Hostile;

// A seeded generator of malformed HTTP/1.1 requests: mutations of a valid request in its method,
// target, version, header names and values (NUL, CR, LF, obs-fold, bad names), line endings,
// framing (Content-Length, Transfer-Encoding and their conflicts) and length (truncation).
// Same seed, same cases: Next is called in order from one thread.
//
// The oracle: GET /smuggled?case=N is hidden in a body, and only where no correct reading of the
// framing (RFC 9112 6.3) makes it a request of its own: inside a body whose framing is clean, or
// after a body whose framing is broken or conflicting (which must be refused or forwarded and
// the connection closed). Mutations never touch the framing headers, never add a blank line
// inside the head, and truncation only cuts the end off, so no case is a legitimate pipeline of
// a /smuggled request. If a backend ever sees /smuggled, the balancer let a request through.
public sealed class HttpFuzzer(int seed)
{
    readonly Random _random = new(seed);

    public FuzzCase Next(int index)
    {
        var recipe = new List<string>();
        var clean = Chance(0.1);
        var hidden = $"GET /smuggled?case={index} HTTP/1.1\r\nHost: example.com\r\n\r\n";

        var method = clean ? Pick("GET", "POST") : PickWeighted(
            (30, "GET"), (20, "POST"), (4, "PUT"), (3, "HEAD"), (3, "OPTIONS"), (2, "DELETE"), (2, "PATCH"),
            (5, "CONNECT"), (4, "TRACE"), (2, "get"), (2, "G\0T"), (2, "GE T"), (1, ""), (2, "FOO"), (1, "\u0001"),
            (1, new string('A', 300)), (1, "GET\t"), (1, "P\u00d6ST"));
        var target = clean ? $"/f/{index}" : PickWeighted(
            (40, $"/f/{index}"), (6, $"/f/{index}?q=1&r=%20"), (6, $"http://example.com/f/{index}"), (2, $"https://example.com/f/{index}"),
            (4, "*"), (4, "example.com:443"), (3, $"/f/{index} x"), (3, "/%zz"), (2, "/f\u0001"), (2, "/f\u007f"),
            (3, $"f/{index}"), (2, $"/f/{index}#frag"), (2, "//f"), (2, "/" + new string('a', 10_000)), (2, "/f/%00"),
            (2, "/f/\u00ff"), (2, ""), (2, "/f\0"), (1, "/f/../../etc"), (1, "?q"));
        var version = clean ? "HTTP/1.1" : PickWeighted(
            (70, "HTTP/1.1"), (8, "HTTP/1.0"), (4, "HTTP/2.0"), (4, "HTTP/9"), (2, "HTTP/1.1 "), (2, "http/1.1"),
            (2, "HTTP/1."), (2, ""), (2, "HTTP/1.1\0"), (2, "HTTP/1.10"), (2, "HTTP/0.9"));
        var gap = !clean && Chance(0.05) ? Pick("  ", "\t", "") : " ";
        recipe.Add($"{Show(method)} {Show(target.Length > 40 ? target[..40] + "..." : target)} {Show(version)}" + (gap == " " ? "" : $" gap \"{Show(gap)}\""));
        var requestLine = method + gap + target + " " + version;

        // Header groups: each a list of lines (an obs-fold is its header's second line).
        var groups = new List<List<string>>();
        var host = clean ? "Host: example.com" : PickWeighted(
            (80, "Host: example.com"), (4, null), (3, "Host: "), (3, "Host: a b"), (3, "Host: example.com:99999"), (3, "Host: a\0b"));
        if (host is null) recipe.Add("no Host");
        else
        {
            groups.Add([host]);
            if (host != "Host: example.com") recipe.Add(Show(host));
            if (!clean && Chance(0.03))
            {
                groups.Add(["Host: other.example"]);
                recipe.Add("two Host lines");
            }
        }
        if (!clean)
            for (var n = _random.Next(0, 4); n > 0; n--)
            {
                var noise = NoiseHeader(index);
                groups.Add(noise);
                recipe.Add("noise " + Show(string.Join("|", noise.Select(l => l.Length > 40 ? l[..40] + "..." : l))));
            }

        var (framing, body, after, kind) = Framing(clean, hidden);
        recipe.Add(kind);
        // Each framing header goes anywhere in the head; an obs-fold line stays with its header.
        var framingGroups = new List<List<string>>();
        foreach (var line in framing)
            if (line.StartsWith(' ') || line.StartsWith('\t')) framingGroups[^1].Add(line);
            else framingGroups.Add([line]);
        foreach (var group in framingGroups) groups.Insert(_random.Next(0, groups.Count + 1), group);

        // Line endings of the head: CRLF, or bare LF on every line, or on one.
        var eol = Enumerable.Repeat("\r\n", groups.Sum(g => g.Count) + 2).ToArray();
        if (!clean && Chance(0.08))
        {
            if (Chance(0.5)) { Array.Fill(eol, "\n"); recipe.Add("bare LF line endings"); }
            else { eol[_random.Next(eol.Length)] = "\n"; recipe.Add("one bare LF"); }
        }
        var head = new StringBuilder();
        if (!clean && Chance(0.03)) { head.Append("\r\n"); recipe.Add("empty line first"); }
        var e = 0;
        head.Append(requestLine).Append(eol[e++]);
        foreach (var line in groups.SelectMany(g => g)) head.Append(line).Append(eol[e++]);
        head.Append(eol[e]);
        var bytes = Encoding.Latin1.GetBytes(head + body);

        if (!clean && Chance(0.08))
        {
            var cut = _random.Next(1, bytes.Length);
            recipe.Add($"cut at {cut} of {bytes.Length}");
            bytes = bytes[..cut];
        }
        return new FuzzCase(index, string.Join("; ", recipe), kind, bytes, after);
    }

    List<string> NoiseHeader(int index) => _random.Next(24) switch
    {
        0 => ["X-Fuzz: a\0b"],
        1 => ["X-Fuzz: a\rb"],
        2 => ["X-Fuzz: a\nX-Injected: 1"],
        3 => ["X-Fuzz: a", " folded"],
        4 => ["X-Fuzz: a", "\tfolded"],
        5 => ["X Fuzz: v"],
        6 => ["X-Fuzz : v"],
        7 => [": v"],
        8 => ["X-F\0zz: v"],
        9 => ["X-Fuzz\u007f: v"],
        10 => ["(X): v"],
        11 => ["X-Fuzz v"],
        12 => ["X-Fuzz: caf\u00e9 \u00ff"],
        13 => ["X-Fuzz: " + new string('v', 10_000)],
        14 => Enumerable.Range(0, 120).Select(i => $"X-Many-{i}: {i}").ToList(),
        15 => ["Connection: close"],
        16 => ["Connection: keep-alive, Content-Length"],
        17 => ["Connection: Transfer-Encoding"],
        18 => ["Expect: 100-continue"],
        19 => ["Upgrade: h2c", "Connection: Upgrade"],
        20 => ["Upgrade: websocket", "Connection: Upgrade"],
        21 => ["X-Forwarded-For: 10.0.0.1"],
        22 => ["X-Fuzz: \u0001\u001b[31m"],
        _ => [$"X-Fuzz-{index}: " + (char)_random.Next(0x21, 0x7f)],
    };

    static string Chunk(string data, string ext = "") => $"{data.Length:x}{ext}\r\n{data}\r\n";

    string Chunked(string data)
    {
        // The data in one to three chunks, now and then with an extension or a trailer.
        var pieces = new List<string>();
        var at = 0;
        for (var n = _random.Next(1, 4); n > 1 && at < data.Length; n--)
        {
            var take = _random.Next(1, Math.Max(2, data.Length - at));
            pieces.Add(data.Substring(at, Math.Min(take, data.Length - at)));
            at += take;
        }
        if (at < data.Length) pieces.Add(data[at..]);
        var ext = Chance(0.2) ? ";ext=1" : "";
        return string.Concat(pieces.Select(p => Chunk(p, ext))) + "0\r\n" + (Chance(0.2) ? "X-Trailer: 1\r\n" : "") + "\r\n";
    }

    (List<string> Headers, string Body, bool HiddenAfter, string Kind) Framing(bool clean, string hidden)
    {
        const string filler = "a=1&";
        var kind = clean ? Pick("none", "cl", "chunked") : PickWeighted(
            (20, "none"), (12, "cl"), (12, "chunked"), (5, "normalised-te"), (12, "cl+te"), (12, "bad-te"), (10, "bad-cl"), (8, "bad-chunks"), (3, "huge-cl"));
        switch (kind)
        {
            case "none":
                return ([], "", false, "no body");
            case "cl":
            {
                var body = (Chance(0.5) ? filler : "") + hidden;
                // Leading zeros and a plus sign: Kestrel reads both as the digits (and forwards the
                // canonical length), so the hidden request stays inside the body either way.
                var length = Chance(0.1) ? $"00{body.Length}" : Chance(0.05) ? $"+{body.Length}" : $"{body.Length}";
                return ([$"Content-Length: {length}"], body, false, $"Content-Length: {length}, hidden in the body");
            }
            case "chunked":
                return (["Transfer-Encoding: chunked"], Chunked(hidden), false, "chunked, hidden in the chunks");
            case "normalised-te":
            {
                var te = Pick("Transfer-Encoding:  chunked", "Transfer-Encoding: Chunked", "Transfer-Encoding: CHUNKED",
                    "Transfer-Encoding: chunked ", "Transfer-Encoding:\tchunked", "Transfer-Encoding: chunked,", "Transfer-Encoding: , chunked");
                return ([te], Chunked(hidden), false, $"{Show(te)}, hidden in the chunks");
            }
            case "cl+te":
            {
                var te = Pick("Transfer-Encoding: chunked", "Transfer-Encoding: Chunked");
                var layout = _random.Next(3);
                var body = layout == 1 ? Chunk(hidden) + "0\r\n\r\n" : "0\r\n\r\n" + hidden;
                var length = layout switch { 0 => body.Length, 1 => 4, _ => _random.Next(0, 5) };
                List<string> headers = Chance(0.5) ? [$"Content-Length: {length}", te] : [te, $"Content-Length: {length}"];
                return (headers, body, layout != 1, $"Content-Length: {length} and {Show(te)}, hidden " + (layout == 1 ? "in the chunk" : "after the last chunk"));
            }
            case "bad-te":
            {
                var te = PickWeighted<List<string>>(
                    (3, ["Transfer-Encoding: gzip, chunked"]), (3, ["Transfer-Encoding: chunked, chunked"]), (2, ["Transfer-Encoding: xchunked"]),
                    (2, ["Transfer-Encoding: chunked, identity"]), (2, ["Transfer-Encoding: identity"]), (1, ["Transfer-Encoding: gzip"]),
                    (2, ["Transfer-Encoding: chunked\u000b"]), (1, ["Transfer-Encoding: \"chunked\""]), (1, ["Transfer-Encoding: chunk"]),
                    (2, ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]), (2, ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"]),
                    (1, ["Transfer-Encoding: deflate, chunked"]), (1, ["Transfer-Encoding: chunked, gzip"]));
                var body = Chunk(hidden) + "0\r\n\r\n" + hidden;
                var headers = new List<string>(te);
                if (Chance(0.3)) headers.Add($"Content-Length: {body.Length}");
                return (headers, body, true, Show(string.Join("|", headers)) + ", hidden in and after the chunks");
            }
            case "bad-cl":
            {
                var a = filler.Length;
                var body = filler + hidden;
                var b = body.Length;
                var headers = PickWeighted<List<string>>(
                    (3, [$"Content-Length: {a}, {b}"]), (3, [$"Content-Length: {a}", $"Content-Length: {b}"]), (2, [$"Content-Length: -{a}"]),
                    (2, [$"Content-Length: 0x{a:x}"]), (2, [$"Content-Length: {a} {a}"]),
                    (2, ["Content-Length: 99999999999999999999999"]), (2, [$"Content-Length: {a}.0"]), (2, ["Content-Length: "]),
                    (1, [$"Content-Length: {a}\0"]), (2, [$"Content-Length: {a}", $" {b}"]), (1, [$"Content-Length: {a}a"]));
                return (headers, body, true, Show(string.Join("|", headers)) + ", hidden after the first 4 bytes");
            }
            case "bad-chunks":
            {
                var size = Pick("zz", "-1", "ffffffffffffffffff", "5 5", "", "0x5", "5\0", "1;\0", $"{hidden.Length - 3:x}", $"{hidden.Length + 3:x}");
                var body = $"{size}\r\n{hidden}\r\n0\r\n\r\n";
                return (["Transfer-Encoding: chunked"], body, false, $"chunk size \"{Show(size)}\" for {hidden.Length} bytes, hidden in the chunk");
            }
            default:
                return (["Content-Length: 1000000"], filler + hidden, false, "Content-Length: 1000000, a short body with the request hidden in it");
        }
    }

    bool Chance(double p) => _random.NextDouble() < p;

    T Pick<T>(params T[] options) => options[_random.Next(options.Length)];

    T PickWeighted<T>(params (int Weight, T Value)[] options)
    {
        var roll = _random.Next(options.Sum(o => o.Weight));
        foreach (var (weight, value) in options)
        {
            if (roll < weight) return value;
            roll -= weight;
        }
        throw new InvalidOperationException("unreachable");
    }

    static string Show(string s) => RawExchange.Escape(s);
}
