using System.Text;

namespace LoadBalancer.Tests.Hostile;

// One HTTP/1.1 response as a raw client read it; Complete when its body came to the last byte.
public sealed record RawReply(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body, bool Complete)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

    public string Text => Encoding.Latin1.GetString(Body);

    public override string ToString() =>
        $"{Status} [{string.Join(", ", Headers.Select(h => $"{h.Key}: {h.Value}"))}] \"{RawExchange.Escape(Text.Length > 200 ? Text[..200] : Text)}\"";
}
