using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace LoadBalancer.Hosting;

// The certificate the client listener presents: one immutable CertificatePair behind one
// reference. Kestrel reads it at the start of every TLS handshake; the CertificateWatcher swaps
// in a new pair. A handshake gets the old pair or the new one, whole, never a mix, and no lock
// is taken: a volatile read per handshake. Connections already open keep the pair they got.
// (Kestrel's ServerCertificateSelector would do too, but it hands SslStream a bare certificate,
// whose chain SslStream then builds on every handshake; a per-connection callback can hand the
// context built once per pair, intermediates included.)
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
}
