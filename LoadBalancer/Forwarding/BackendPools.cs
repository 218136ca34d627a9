using System.Diagnostics;
using System.Net.Sockets;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Forwarding;

// Makes a BackendRoute for a backend: one SocketsHttpHandler per backend is its connection pool
// (keep-alive connections reused across requests), sized and timed by the pool settings in force
// (a reload that changes them gets every backend a new route). Its ConnectCallback wraps every
// connection's stream, so the state task hears of each pooled connection opening and closing,
// and for an https backend shakes hands itself (BackendTls: our server name and trust, not the
// Host header's). The route carries the backend's protocol (ProxyEndpoint picks YARP's request
// config by it) and, for https, a small probe client with the same TLS settings.
// A discovered backend (one address of a host name) connects to its address, while the URL's
// host name stays the Host header and the TLS server name.
public sealed class BackendPools(StateClient state)
{
    int _nextId;

    public BackendRoute Create(BackendConfig backend, PoolConfig pool)
    {
        BackendRoute? route = null;
        var tls = BackendTls.For(backend);
        System.Net.EndPoint? address = backend.Address is { } a ? System.Net.IPEndPoint.Parse(a) : null;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            ActivityHeadersPropagator = null, // no tracing headers added to forwarded requests
            MaxConnectionsPerServer = pool.MaxConnectionsPerBackend,
            PooledConnectionIdleTimeout = pool.IdleTimeout,
            PooledConnectionLifetime = pool.Lifetime,
            ConnectTimeout = pool.ConnectTimeout,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = await ConnectAsync(address ?? context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
                var r = route!;
                state.TellConnection(r, +1);
                var counted = new CountedStream(socket, () => state.TellConnection(r, -1));
                return tls is null ? counted : await tls.AuthenticateAsync(counted, cancellationToken).ConfigureAwait(false);
            },
        };
        route = new BackendRoute(Interlocked.Increment(ref _nextId), backend.Url, backend.Key,
            new HttpMessageInvoker(handler, disposeHandler: true))
        {
            Protocol = backend.Protocol,
            Destination = tls is not null && backend.Protocol == BackendProtocol.Http1 ? "http" + backend.Key["https".Length..] : backend.Key,
            Tls = backend.Tls,
            Address = backend.Address,
            ProbeClient = tls is null && address is null ? null : ProbeClient(tls, address),
        };
        return route;
    }

    // A TCP connection to the backend with Nagle off; the socket is closed if the connect fails.
    static async ValueTask<Socket> ConnectAsync(System.Net.EndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // Probes keep their own connections (HttpBackendProbe says why), with the backend's TLS and,
    // for a discovered backend, to its address.
    static HttpMessageInvoker ProbeClient(BackendTls? tls, System.Net.EndPoint? address)
    {
        var handler = Probing.HttpBackendProbe.CreateHandler();
        handler.ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = await ConnectAsync(address ?? context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            var stream = new NetworkStream(socket, ownsSocket: true);
            return tls is null ? stream : await tls.AuthenticateAsync(stream, cancellationToken).ConfigureAwait(false);
        };
        return new HttpMessageInvoker(handler, disposeHandler: true);
    }

    // A NetworkStream that reports, once, when the pool closes it.
    sealed class CountedStream(Socket socket, Action onClose) : NetworkStream(socket, ownsSocket: true)
    {
        int _closed;

        protected override void Dispose(bool disposing)
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0) onClose();
            base.Dispose(disposing);
        }
    }
}
