using LoadBalancer.Configuration;
using LoadBalancer.Hosting;
using System.Net.Security;
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
    public void Poll_CertificateReplacedByAHugeFile_RejectedOnceAsTooLargeAndTheOldPairServes()
    {
        using (var file = File.Create(_tls.Certificate)) file.SetLength(BoundedFile.PemLimit + 1L);

        for (var i = 0; i < 3; i++) _watcher.Poll();

        Assert.Equal(1, Served);
        Assert.Equal(1, Rejections);
        var error = _logs.Lines.Single(l => l.Level == LogLevel.Error).Message;
        Assert.Contains("tls.certificate", error);
        Assert.Contains("larger than 4 MiB", error);
    }

    [Fact]
    public void Load_CertificateIsADevice_RefusedNamingTheKey()
    {
        var message = Assert.Throws<ConfigException>(() =>
            CertificatePair.Load(_tls with { Certificate = "/dev/zero" }, HttpProtocols.Http1AndHttp2, "lb.json")).Message;

        Assert.Equal($"lb.json: tls.certificate: /dev/zero: {BoundedFile.Describe(BoundedFile.PemLimit)}", message);
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

    // The loop itself: a two-case select over its ticker (a fake clock here) and tlssettings.
    [Fact]
    public async Task Loop_TlsSettingsFromAReload_ServedAtOnceThenItsFilesAreTheWatchedOnes()
    {
        var time = new FakeTimeProvider();
        var settings = System.Threading.Channels.Channel.CreateBounded<LoadBalancer.Pipeline.TlsSettings>(1);
        using var watcher = new CertificateWatcher(_tls, HttpProtocols.Http1AndHttp2, _served, time,
            _loggerFactory.CreateLogger<CertificateWatcher>(), settings.Reader);
        await watcher.StartAsync(CancellationToken.None);
        var other = new TlsConfig(Path.Combine(_dir, "other.pem"), Path.Combine(_dir, "other.key"));
        void WriteOther(long serial) { using var c = _ca.Issue(serial); TestCa.WritePem(c, other.Certificate, other.Key); }
        WriteOther(7);

        // What the config watcher sends: the new names, the protocols, the pair it loaded from them.
        await settings.Writer.WriteAsync(new(other, HttpProtocols.Http1, CertificatePair.Load(other, HttpProtocols.Http1, Path.Combine(_dir, "lb.json"))));
        await _logs.WaitForCountAsync("TLS certificate loaded", 1);
        Assert.Equal(7, Served); // no tick needed
        Assert.Equal(HttpProtocols.Http1, _served.Current.Protocols);

        // From then on the new files are watched, with the new protocols; the old ones are not.
        Write(8);
        WriteOther(9);
        time.Advance(CertificateWatcher.PollInterval);
        await _logs.WaitForCountAsync("TLS certificate loaded", 2);
        Assert.Equal(9, Served);
        Assert.Equal(HttpProtocols.Http1, _served.Current.Protocols);
        Assert.Equal([SslApplicationProtocol.Http11], _served.Current.Options.ApplicationProtocols);
        await watcher.StopAsync(CancellationToken.None);
    }

    public void Dispose()
    {
        _watcher.Dispose();
        _loggerFactory.Dispose();
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
