using System.Net.Http.Headers;
using System.Net.Sockets;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Probing;

// GET <backend><healthCheck.path>; any 2xx within healthCheck.timeout passes. Probes use their
// own small connection pool, not the backend's request pool, so a probe never queues behind
// client traffic and the pool's connection count shows client traffic only.
public sealed class HttpBackendProbe(HttpMessageInvoker client, TimeProvider time) : IBackendProbe, IDisposable
{
    public HttpBackendProbe(TimeProvider time) : this(new HttpMessageInvoker(CreateHandler()), time) { }

    /// <summary>The probe's connection settings (BackendPools adds TLS for an https backend's own probe client).</summary>
    internal static SocketsHttpHandler CreateHandler() => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(30), // the probe's own timeout is the real limit
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        ActivityHeadersPropagator = null,
    };

    public async Task<ProbeResult> ProbeAsync(BackendRoute backend, HealthCheckConfig settings, CancellationToken cancellationToken)
    {
        // The timeout runs on the injected clock (CancelAfter would use the real one).
        using var timer = new CancellationTokenSource(settings.Timeout, time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        var started = time.GetTimestamp();
        try
        {
            // In the backend's own protocol (an h2c-only backend would refuse HTTP/1.1), and for an
            // https backend through its own client, which has the backend's TLS settings.
            var http2 = backend.Protocol != BackendProtocol.Http1;
            using var request = new HttpRequestMessage(HttpMethod.Get, backend.Key + settings.Path)
            {
                Version = http2 ? System.Net.HttpVersion.Version20 : System.Net.HttpVersion.Version11,
                VersionPolicy = http2 ? HttpVersionPolicy.RequestVersionExact : HttpVersionPolicy.RequestVersionOrLower,
            };
            request.Headers.UserAgent.Add(new ProductInfoHeaderValue("LoadBalancer-HealthCheck", "1.0"));
            using var response = await (backend.ProbeClient ?? client).SendAsync(request, timeout.Token).ConfigureAwait(false);
            return new ProbeResult(backend, time.GetUtcNow(), (int)response.StatusCode, time.GetElapsedTime(started), null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed($"timed out after {Durations.Format(settings.Timeout)}");
        }
        catch (HttpRequestException e)
        {
            return Failed(Describe(e));
        }

        ProbeResult Failed(string error) => new(backend, time.GetUtcNow(), null, time.GetElapsedTime(started), error);
    }

    static string Describe(HttpRequestException e) =>
        Tls(e) is { } tls ? $"TLS failure: {tls.Message}"
        : e.InnerException is SocketException s ? s.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "connection refused",
            SocketError.ConnectionReset => "connection reset",
            SocketError.HostNotFound or SocketError.NoData => "host not found",
            SocketError.TimedOut => "connect timed out",
            var other => other.ToString(),
        }
        : e.HttpRequestError switch
        {
            HttpRequestError.ConnectionError => "connection failed",
            HttpRequestError.ResponseEnded => "connection closed before a response",
            HttpRequestError.InvalidResponse => "invalid response",
            HttpRequestError.SecureConnectionError => "TLS failure",
            HttpRequestError.NameResolutionError => "host not found",
            _ => e.Message,
        };

    static System.Security.Authentication.AuthenticationException? Tls(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is System.Security.Authentication.AuthenticationException a) return a;
        return null;
    }

    public void Dispose() => client.Dispose();
}
