using LoadBalancer.Configuration;
using LoadBalancer.Hosting;
using System.Security.Cryptography.X509Certificates;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Hosting;

// The certificate watcher's poll, called directly (no timer, no listener): real PEM files in a
// temp folder, the ServerCertificate it swaps into, and what it logs.
public sealed class CertificateWatcherTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("lb-certwatch-").FullName;
    readonly TestCa _ca = TestCa.Create();
    readonly LogSink _logs = new();
    readonly ILoggerFactory _loggerFactory;
    readonly TlsConfig _tls;
    readonly ServerCertificate _served;
    readonly CertificateWatcher _watcher;

    public CertificateWatcherTests()
    {
        _tls = new TlsConfig(Path.Combine(_dir, "lb.pem"), Path.Combine(_dir, "lb.key"));
        Write(1);
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        _served = new ServerCertificate(CertificatePair.Load(_tls, HttpProtocols.Http1AndHttp2, Path.Combine(_dir, "lb.json")));
        _watcher = new CertificateWatcher(_tls, HttpProtocols.Http1AndHttp2, _served, new FakeTimeProvider(), _loggerFactory.CreateLogger<CertificateWatcher>());
    }

    void Write(long serial)
    {
        using var pair = _ca.Issue(serial);
        TestCa.WritePem(pair, _tls.Certificate, _tls.Key);
    }

    long Served => TestCa.Serial(_served.Current.Leaf);
    int Rejections => _logs.Lines.Count(l => l.Message.Contains("TLS certificate change rejected", StringComparison.Ordinal));

    [Fact]
    public void Poll_Unchanged_KeepsThePairAndLogsNothing()
    {
        var before = _served.Current;

        _watcher.Poll();

        Assert.Same(before, _served.Current);
        Assert.Empty(_logs.Lines);
    }

    [Fact]
    public void Poll_ValidNewPair_SwappedAndLogged()
    {
        Write(2);

        _watcher.Poll();

        Assert.Equal(2, Served);
        Assert.Contains(_logs.Lines, l => l.Level == LogLevel.Information && l.Message.Contains(_served.Current.Leaf.SerialNumber, StringComparison.Ordinal));
    }

    [Fact]
    public void Poll_HalfWrittenThenCompleted_NoErrorLogged()
    {
        // The certificate first, the key a moment later, as cert-manager writes them.
        using var next = _ca.Issue(3);
        File.WriteAllText(_tls.Certificate, next.ExportCertificatePem());
        _watcher.Poll(); // a certificate beside the old key: not yet an error
        File.WriteAllText(_tls.Key, next.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        _watcher.Poll();

        Assert.Equal(3, Served);
        Assert.Equal(0, Rejections);
    }

    [Fact]
    public void Poll_InvalidPairThatStays_LoggedOnceAndTheOldPairServes()
    {
        File.WriteAllText(_tls.Key, "not a key\n");

        for (var i = 0; i < 5; i++) _watcher.Poll();

        Assert.Equal(1, Served);
        Assert.Equal(1, Rejections);
        Assert.Contains("tls.key", _logs.Lines.Single(l => l.Level == LogLevel.Error).Message);
    }

    [Fact]
    public void Poll_FilesGone_KeepsServingWithoutAWord()
    {
        File.Delete(_tls.Certificate);

        _watcher.Poll();
        _watcher.Poll();

        Assert.Equal(1, Served);
        Assert.Empty(_logs.Lines);
    }

    public void Dispose()
    {
        _watcher.Dispose();
        _loggerFactory.Dispose();
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
