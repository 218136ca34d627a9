using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using LoadBalancer.Configuration;

namespace LoadBalancer.Forwarding;

// TLS to an https backend: verified against the system's roots, or only tls.ca's; the name
// checked (and sent as SNI) is tls.serverName, else the URL's host; insecureSkipVerify skips
// the check, and only when said so. ALPN offers exactly the backend's protocol (h2 or
// http/1.1), so an h2 backend that cannot speak HTTP/2 fails at once instead of silently
// downgrading. SocketsHttpHandler would take the TLS name from the Host header, which here is the
// client's; so the pool's ConnectCallback shakes hands itself and hands over the SslStream, which
// SocketsHttpHandler then uses as it is. A failed verification throws AuthenticationException:
// FailureClassifier's TlsFailure, counted against the backend, retried as nothing-sent.
public sealed class BackendTls
{
    readonly string _serverName;
    readonly List<SslApplicationProtocol> _alpn;
    readonly X509Certificate2Collection? _roots;
    readonly bool _skipVerify;

    BackendTls(BackendConfig backend)
    {
        var tls = backend.Tls;
        _serverName = tls?.ServerName ?? backend.Uri.IdnHost; // IdnHost: an IPv6 address without brackets
        _alpn = [backend.Protocol == BackendProtocol.H2 ? SslApplicationProtocol.Http2 : SslApplicationProtocol.Http11];
        _skipVerify = tls?.InsecureSkipVerify == true;
        if (tls?.Ca is { } pem)
        {
            _roots = [];
            _roots.ImportFromPem(pem); // checked by ConfigLoader: at least one certificate
        }
    }

    /// <summary>Null for an http:// backend.</summary>
    public static BackendTls? For(BackendConfig backend) => backend.Uri.Scheme == "https" ? new BackendTls(backend) : null;

    /// <summary>The handshake over a connected stream; the stream is disposed when it fails.</summary>
    public async ValueTask<Stream> AuthenticateAsync(Stream transport, CancellationToken cancellationToken)
    {
        var tls = new SslStream(transport, leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsClientAsync(Options(), cancellationToken).ConfigureAwait(false);
            return tls;
        }
        catch
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    // New per connection: SslStream keeps a reference to the chain policy it is given.
    SslClientAuthenticationOptions Options()
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = _serverName,
            ApplicationProtocols = _alpn,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck, // as SocketsHttpHandler's default; nginx's too
        };
        if (_skipVerify)
        {
            options.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (_roots is not null)
        {
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            policy.CustomTrustStore.AddRange(_roots);
            options.CertificateChainPolicy = policy; // the name is still checked against TargetHost
        }
        return options;
    }
}
