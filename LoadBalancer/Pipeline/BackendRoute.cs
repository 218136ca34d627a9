using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// What the state task hands a request handler: where to send and through which pool.
// Immutable, but for the connection counts on their way to the state task (see
// PendingConnections); the mutable facts about a backend (health, in-flight, counters) stay in
// BackendTable, which only the state task touches. A reload that changes pool.* gives the backend
// a new route; requests still in flight finish on the old one (same Key, another Id).
public sealed class BackendRoute(int id, string url, string key, HttpMessageInvoker client) : IDisposable
{
    public int Id { get; } = id;

    /// <summary>As written in lb.json: the label users see.</summary>
    public string Url { get; } = url;

    /// <summary>Normalised URL, without trailing slash: YARP's destination prefix.</summary>
    public string Key { get; } = key;

    /// <summary>YARP's destination prefix: Key, but http:// for an https backend spoken to in
    /// HTTP/1.1, whose TLS the pool's ConnectCallback does itself (BackendTls). SocketsHttpHandler
    /// would key an https pool by each request's Host header, a pool per Host value a client sends;
    /// as http it keeps one pool, and the bytes still go over our TLS. (HTTP/2 sends the scheme, so
    /// an h2 backend keeps https.)</summary>
    public string Destination { get => _destination ?? Key; init => _destination = value; }
    string? _destination;

    /// <summary>This backend's connection pool (one SocketsHttpHandler).</summary>
    public HttpMessageInvoker Client { get; } = client;

    /// <summary>How requests and probes talk to it: YARP's Version and VersionPolicy follow it.</summary>
    public BackendProtocol Protocol { get; init; } = BackendProtocol.Http1;

    /// <summary>A discovered backend's address, "ip:port", which its pool connects to (the URL's
    /// host name stays the Host header and the TLS server name); null for a backend from lb.json.</summary>
    public string? Address { get; init; }

    /// <summary>Which backend this is: Key, plus the address for a discovered one.</summary>
    public string Identity => _identity ??= Address is null ? Key : $"{Key}@{Address}";
    string? _identity;

    /// <summary>The tls settings the pool was made with (a reload that changes them makes a new route).</summary>
    public BackendTlsConfig? Tls { get; init; }

    /// <summary>An https backend's probe client, with the pool's TLS settings; null: the probe's shared client.</summary>
    public HttpMessageInvoker? ProbeClient { get; init; }

    /// <summary>Opens minus closes of this pool's connections, not yet applied by the state task.</summary>
    public PendingConnections Connections { get; } = new();

    public void Dispose()
    {
        Client.Dispose();
        ProbeClient?.Dispose();
    }

    public override string ToString() => Url;
}
