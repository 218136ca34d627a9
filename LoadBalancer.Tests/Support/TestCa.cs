using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace LoadBalancer.Tests.Support;

// A throwaway certificate authority made in code (CertificateRequest, ECDSA P-256: quick to make),
// and the leaf certificates it issues, written as PEM files as an operator's would be. Clients in
// tests trust it through a validation callback, never through the machine's store.
public sealed class TestCa : IDisposable
{
    readonly ECDsa _key;

    TestCa(X509Certificate2 certificate, ECDsa key)
    {
        Certificate = certificate;
        _key = key;
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate as PEM (what backends[].tls.ca names).</summary>
    public string Pem => Certificate.ExportCertificatePem();

    public static TestCa Create(string name = "LoadBalancer Test CA")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new TestCa(request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1)), key);
    }

    /// <summary>A server certificate (with its key) for these names; 127.0.0.1 and localhost are always in it.</summary>
    public X509Certificate2 Issue(long serial, params string[] dnsNames) => Issue(serial, DateTimeOffset.UtcNow.AddDays(30), dnsNames);

    public X509Certificate2 Issue(long serial, DateTimeOffset notAfter, params string[] dnsNames)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={(dnsNames.Length > 0 ? dnsNames[0] : "localhost")}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        foreach (var name in dnsNames) san.AddDnsName(name);
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var serialBytes = BitConverter.GetBytes(serial);
        Array.Reverse(serialBytes); // big-endian, as X.509 writes it
        using var issued = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa(_key),
            DateTimeOffset.UtcNow.AddDays(-1), notAfter, serialBytes);
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>Writes the certificate and its key as PEM; through a temporary file and a rename,
    /// unless <paramref name="inPlace"/>, so a reader never sees half a file.</summary>
    public static void WritePem(X509Certificate2 certificate, string certificatePath, string keyPath, bool inPlace = false)
    {
        Write(certificatePath, certificate.ExportCertificatePem() + "\n", inPlace);
        Write(keyPath, certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem() + "\n", inPlace);
    }

    static void Write(string path, string text, bool inPlace)
    {
        if (inPlace)
        {
            File.WriteAllText(path, text);
            return;
        }
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Does this CA vouch for the certificate (chain only; the name is the caller's check)?</summary>
    public bool Issued(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    /// <summary>A client's validation callback that trusts this CA (and checks the name as usual).</summary>
    public RemoteCertificateValidationCallback Trust(Action<X509Certificate2>? seen = null) => (_, certificate, _, errors) =>
    {
        if (certificate is not X509Certificate2 c) return false;
        seen?.Invoke(c);
        return (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None && Issued(c);
    };

    /// <summary>The serial number Issue was given (X509Certificate2.SerialNumber is hex, big-endian).</summary>
    public static long Serial(X509Certificate2 certificate) => Convert.ToInt64(certificate.SerialNumber, 16);

    public void Dispose()
    {
        Certificate.Dispose();
        _key.Dispose();
    }
}
