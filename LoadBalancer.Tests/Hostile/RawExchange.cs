using System.Text;

namespace LoadBalancer.Tests.Hostile;

// Everything a raw client received on one connection, and whether the server closed it.
// Replies parses the bytes as a sequence of HTTP/1.1 responses (1xx included), the way a client
// would: a second reply on a connection that should have been closed is a smuggled answer.
public sealed record RawExchange(byte[] Bytes, bool Closed, bool Reset)
{
    public IReadOnlyList<RawReply> Replies => Parse(Bytes, Closed);

    /// <summary>A final response has come whole (its body to the last byte).</summary>
    public bool HasCompleteFinal => Replies.Any(r => r.Status >= 200 && r.Complete);

    /// <summary>The first final (non-1xx) response, or null when none came.</summary>
    public RawReply? Final => Replies.FirstOrDefault(r => r.Status >= 200);

    /// <summary>Final responses: more than one means the server answered something after the first.</summary>
    public IReadOnlyList<RawReply> Finals => Replies.Where(r => r.Status >= 200).ToList();

    public override string ToString()
    {
        var text = Encoding.Latin1.GetString(Bytes, 0, Math.Min(Bytes.Length, 600));
        return $"{(Closed ? Reset ? "reset" : "closed" : "still open")} after {Bytes.Length} bytes: \"{Escape(text)}\"";
    }

    public static string Escape(string s)
    {
        var sb = new StringBuilder();
        foreach (var c in s)
            sb.Append(c switch
            {
                '\r' => "\\r",
                '\n' => "\\n",
                '\t' => "\\t",
                '\\' => "\\\\",
                '"' => "\\\"",
                < ' ' or >= '\x7f' => $"\\x{(int)c:x2}",
                _ => c.ToString(),
            });
        return sb.ToString();
    }

    static List<RawReply> Parse(byte[] bytes, bool closed)
    {
        var replies = new List<RawReply>();
        var at = 0;
        while (at < bytes.Length)
        {
            var headEnd = IndexOf(bytes, "\r\n\r\n"u8, at);
            if (headEnd < 0) break;
            var lines = Encoding.Latin1.GetString(bytes, at, headEnd - at).Split("\r\n");
            var parts = lines[0].Split(' ', 3);
            if (parts.Length < 2 || !parts[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(parts[1], out var status)) break;
            var headers = lines.Skip(1).Where(l => l.Contains(':'))
                .Select(l => new KeyValuePair<string, string>(l[..l.IndexOf(':')].Trim(), l[(l.IndexOf(':') + 1)..].Trim())).ToList();
            at = headEnd + 4;
            var reply = new RawReply(status, headers, [], Complete: true);
            if (status < 200 || status is 204 or 304)
            {
                replies.Add(reply);
                continue;
            }
            if (reply.Header("Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true)
            {
                var body = new MemoryStream();
                var complete = false;
                while (true)
                {
                    var lineEnd = IndexOf(bytes, "\r\n"u8, at);
                    if (lineEnd < 0) { at = bytes.Length; break; }
                    var sizeText = Encoding.Latin1.GetString(bytes, at, lineEnd - at).Split(';')[0].Trim();
                    if (!int.TryParse(sizeText, System.Globalization.NumberStyles.HexNumber, null, out var size)) { at = bytes.Length; break; }
                    at = lineEnd + 2;
                    if (size == 0)
                    {
                        var trailersEnd = IndexOf(bytes, "\r\n"u8, at);
                        while (trailersEnd > at) { at = trailersEnd + 2; trailersEnd = IndexOf(bytes, "\r\n"u8, at); }
                        complete = trailersEnd >= 0;
                        at = trailersEnd < 0 ? bytes.Length : trailersEnd + 2;
                        break;
                    }
                    var take = Math.Min(size, bytes.Length - at);
                    body.Write(bytes, at, take);
                    at = Math.Min(bytes.Length, at + size + 2);
                }
                replies.Add(reply with { Body = body.ToArray(), Complete = complete });
            }
            else if (reply.Header("Content-Length") is { } length && int.TryParse(length, out var n))
            {
                var take = Math.Min(n, bytes.Length - at);
                replies.Add(reply with { Body = bytes[at..(at + take)], Complete = take == n });
                at += take;
            }
            else
            {
                replies.Add(reply with { Body = bytes[at..], Complete = closed }); // until the server closes
                at = bytes.Length;
            }
        }
        return replies;
    }

    static int IndexOf(byte[] bytes, ReadOnlySpan<byte> what, int from) =>
        from >= bytes.Length ? -1 : bytes.AsSpan(from).IndexOf(what) is var i and >= 0 ? from + i : -1;
}
