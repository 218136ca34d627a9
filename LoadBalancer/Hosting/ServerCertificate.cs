using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace LoadBalancer.Hosting;

// The certificate the client listener presents: one immutable CertificatePair behind one
// reference. Kestrel reads it at the start of every TLS handshake; the CertificateWatcher swaps
// in a new pair. A handshake gets the old pair or the new one, whole, never a mix, and no lock
// is taken: a volatile read per handshake. Connections already open keep the pair they got.
// (Kestrel's ServerCertificateSelector would do too, but it hands SslStream a bare certificate,
// whose chain SslStream then builds on every handshake; a per-connection callback can hand the
// context built once per pair, intermediates included.)
// The pair carries listenProtocols too, as its ALPN list: the https listener is bound for both
// HTTP/1.1 and HTTP/2, and what a client may speak is what the current pair offers, so a reload
// can change it without rebinding the port.
public sealed class ServerCertificate(CertificatePair first)
{
    CertificatePair _current = first;

    public CertificatePair Current => Volatile.Read(ref _current);

    /// <summary>From the watcher only. The old pair is left to the GC: a handshake may still be using it.</summary>
    internal void Swap(CertificatePair next) => Volatile.Write(ref _current, next);

    /// <summary>For ListenOptions.UseHttps: the current pair's options, per connection.</summary>
    public TlsHandshakeCallbackOptions HandshakeOptions() => new()
    {
        OnConnection = _ => new(Current.Options),
    };

    /// <summary>For ListenOptions.Use after UseHttps. With listenProtocols ["h2"], a client that did
    /// not agree to h2 by ALPN (it offered none) is closed, as Kestrel closes it on a listener bound
    /// for HTTP/2 alone; otherwise Kestrel chooses by ALPN, HTTP/1.1 when there is none.</summary>
    public ConnectionDelegate RequireAgreedProtocol(ConnectionDelegate next) => connection =>
    {
        if (Current.Protocols == HttpProtocols.Http2
            && connection.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol.Span.SequenceEqual("h2"u8) != true)
        {
            connection.Abort(new ConnectionAbortedException("listenProtocols is [\"h2\"] and the client did not agree to h2 by ALPN"));
            return Task.CompletedTask;
        }
        return next(connection);
    };
}
