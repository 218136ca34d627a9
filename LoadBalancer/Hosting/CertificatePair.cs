using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using LoadBalancer.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LoadBalancer.Hosting;

// tls.certificate and tls.key, loaded from PEM and checked, with everything a handshake needs
// built once rather than per connection: the certificate context (the leaf and any intermediates
// that follow it in the certificate file, all sent to clients; its chain is built here, not on
// every handshake), TLS 1.2 and 1.3 only, ALPN as listenProtocols says. Immutable: a new file
// gives a new pair, swapped whole into ServerCertificate.
// A pair that cannot serve throws ConfigException naming the key at fault ("tls.key: ...: does
// not match tls.certificate"), so startup can stop with exit 2 and the watcher can log it.
public sealed class CertificatePair
{
    const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    const string RsaOid = "1.2.840.113549.1.1.1", EcOid = "1.2.840.10045.2.1";

    CertificatePair(X509Certificate2 leaf, SslServerAuthenticationOptions options, HttpProtocols protocols, byte[] certificateFile, byte[] keyFile)
    {
        Leaf = leaf;
        Options = options;
        Protocols = protocols;
        CertificateFile = certificateFile;
        KeyFile = keyFile;
    }

    /// <summary>The certificate clients see (its serial number, NotAfter for the expiry metric).</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>Handed to every handshake as is; never changed after it is built.</summary>
    public SslServerAuthenticationOptions Options { get; }

    /// <summary>listenProtocols when it was made: what its ALPN offers.</summary>
    public HttpProtocols Protocols { get; }

    /// <summary>The files' bytes this pair was made from: the watcher's "what is served now".</summary>
    internal byte[] CertificateFile { get; }
    internal byte[] KeyFile { get; }

    /// <summary>Reads and checks both files at startup. A problem's one line names the
    /// configuration file, tls.certificate or tls.key, and the path.</summary>
    public static CertificatePair Load(TlsConfig tls, HttpProtocols protocols, string configFile)
    {
        try
        {
            return FromPem(Read(tls.Certificate, "tls.certificate"), Read(tls.Key, "tls.key"), tls, protocols);
        }
        catch (ConfigException e)
        {
            throw new ConfigException($"{configFile}: {e.Message}");
        }
    }

    /// <summary>Files as read (by the watcher, which compares bytes before it parses).</summary>
    internal static byte[] Read(string path, string key)
    {
        try
        {
            return BoundedFile.Read(path, BoundedFile.PemLimit); // too large: FromPem says so
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException($"{key}: {path}: file not found");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"{key}: {path}: cannot read: {e.Message}");
        }
    }

    internal static CertificatePair FromPem(byte[] certificateFile, byte[] keyFile, TlsConfig tls, HttpProtocols protocols)
    {
        if (BoundedFile.TooLarge(certificateFile, BoundedFile.PemLimit)) throw new ConfigException($"tls.certificate: {tls.Certificate}: {BoundedFile.Describe(BoundedFile.PemLimit)}");
        if (BoundedFile.TooLarge(keyFile, BoundedFile.PemLimit)) throw new ConfigException($"tls.key: {tls.Key}: {BoundedFile.Describe(BoundedFile.PemLimit)}");
        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPem(Encoding.UTF8.GetString(certificateFile));
        }
        catch (CryptographicException e)
        {
            throw new ConfigException($"tls.certificate: {tls.Certificate}: not a PEM certificate: {e.Message}");
        }
        if (chain.Count == 0) throw new ConfigException($"tls.certificate: {tls.Certificate}: no PEM certificate in it");
        var leaf = chain[0];
        if (leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } eku
            && eku.EnhancedKeyUsages.Cast<Oid>().All(o => o.Value != ServerAuth))
            throw new ConfigException($"tls.certificate: {tls.Certificate}: not a server certificate (its extended key usage lacks serverAuth)");

        var withKey = WithKey(leaf, Encoding.UTF8.GetString(keyFile), tls);
        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < chain.Count; i++) intermediates.Add(chain[i]);
        var options = new SslServerAuthenticationOptions
        {
            // offline: the chain is made from the file's certificates and the system store, never downloaded.
            ServerCertificateContext = SslStreamCertificateContext.Create(withKey, intermediates, offline: true),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ApplicationProtocols = Alpn(protocols),
            AllowRenegotiation = false, // RFC 9113 9.2.1, and nothing here needs it
            ClientCertificateRequired = false,
        };
        return new CertificatePair(withKey, options, protocols, certificateFile, keyFile);
    }

    // Order matters: the client's first match in our list wins, so h2 comes first.
    static List<SslApplicationProtocol> Alpn(HttpProtocols protocols)
    {
        var alpn = new List<SslApplicationProtocol>();
        if (protocols.HasFlag(HttpProtocols.Http2)) alpn.Add(SslApplicationProtocol.Http2);
        if (protocols.HasFlag(HttpProtocols.Http1)) alpn.Add(SslApplicationProtocol.Http11);
        return alpn;
    }

    static X509Certificate2 WithKey(X509Certificate2 leaf, string keyPem, TlsConfig tls)
    {
        AsymmetricAlgorithm key = leaf.GetKeyAlgorithm() switch
        {
            RsaOid => RSA.Create(),
            EcOid => ECDsa.Create(),
            var other => throw new ConfigException($"tls.certificate: {tls.Certificate}: its key type ({other}) is not supported: use RSA or ECDSA"),
        };
        using (key)
        {
            try
            {
                key.ImportFromPem(keyPem);
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException) // no key of that type, an encrypted or corrupt one
            {
                throw new ConfigException($"tls.key: {tls.Key}: no usable PEM private key for the certificate's {(key is RSA ? "RSA" : "ECDSA")} key ({e.Message.TrimEnd('.')}); an encrypted key is not supported");
            }
            try
            {
                return key is RSA rsa ? leaf.CopyWithPrivateKey(rsa) : leaf.CopyWithPrivateKey((ECDsa)key);
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException) // another certificate's key
            {
                throw new ConfigException($"tls.key: {tls.Key}: does not match tls.certificate ({e.Message.TrimEnd('.')})");
            }
        }
    }
}
