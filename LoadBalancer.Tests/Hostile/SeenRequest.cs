namespace LoadBalancer.Tests.Hostile;

// One request as a backend's handler got it: method, raw target, headers, and (when the
// default handler read it) the body. What reached a backend is what the tests judge.
public sealed class SeenRequest(string backend, string method, string target, IReadOnlyDictionary<string, string> headers)
{
    public string Backend { get; } = backend;
    public string Method { get; } = method;
    public string Target { get; } = target;
    public IReadOnlyDictionary<string, string> Headers { get; } = headers;

    /// <summary>The body the backend read, or null when it was not read (or could not be).</summary>
    public string? Body { get; set; }

    /// <summary>Why reading the body failed, if it did.</summary>
    public string? BodyError { get; set; }

    /// <summary>The well-behaved client's own traffic.</summary>
    public bool IsCalm => Method == "GET" && Target.StartsWith(CalmClient.PathPrefix, StringComparison.Ordinal);

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;

    public override string ToString() =>
        $"{Backend}: {Method} {RawExchange.Escape(Target)} [{string.Join(", ", Headers.Select(h => $"{h.Key}: {RawExchange.Escape(h.Value)}"))}]"
        + (Body is null ? "" : $" body \"{RawExchange.Escape(Body.Length > 200 ? Body[..200] : Body)}\"")
        + (BodyError is null ? "" : $" body failed: {BodyError}");
}
