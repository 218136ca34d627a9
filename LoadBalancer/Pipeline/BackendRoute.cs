namespace LoadBalancer.Pipeline;

// What the state task hands a request handler: where to send and through which pool.
// Immutable; the mutable facts about a backend (health, in-flight, counters) stay in
// BackendTable, which only the state task touches.
public sealed class BackendRoute(int id, string url, string key, HttpMessageInvoker client) : IDisposable
{
    public int Id { get; } = id;

    /// <summary>As written in lb.json: the label users see.</summary>
    public string Url { get; } = url;

    /// <summary>Normalised URL, without trailing slash: YARP's destination prefix.</summary>
    public string Key { get; } = key;

    /// <summary>This backend's connection pool (one SocketsHttpHandler).</summary>
    public HttpMessageInvoker Client { get; } = client;

    public void Dispose() => Client.Dispose();

    public override string ToString() => Url;
}
