using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Hosting;

// Contract, "Edge": an https listen terminates TLS 1.2/1.3 with tls.certificate and tls.key
// (paths relative to lb.json's folder), offers h2 and http/1.1 by ALPN, and watches the files:
// a valid new pair serves new handshakes within 2 s, an invalid one is logged once and the old
// pair stays. Real sockets, a CA made in code; the served certificate's serial tells which pair.
public sealed class TlsListenerTests : IAsyncDisposable
{
    readonly TestCa _ca = TestCa.Create();
    readonly string _dir = Directory.CreateTempSubdirectory("lb-tls-").FullName;
    TestBackend? _backend;
    Balancer? _lb;

    string CertificatePath => Path.Combine(_dir, "certs", "lb.pem");
    string KeyPath => Path.Combine(_dir, "certs", "lb.key");

    async Task<Balancer> StartAsync(long serial = 1, Action<JsonObject>? configure = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(CertificatePath)!);
        using (var first = _ca.Issue(serial)) TestCa.WritePem(first, CertificatePath, KeyPath);
        _backend = await TestBackend.StartAsync("a");
        var config = Balancer.Config(_backend);
        config["listen"] = "https://127.0.0.1:0";
        config["tls"] = new JsonObject { ["certificate"] = "certs/lb.pem", ["key"] = "certs/lb.key" }; // relative to lb.json
        configure?.Invoke(config);
        _config = config;
        _lb = await Balancer.StartAsync(config, directory: _dir);
        return _lb;
    }

    JsonObject? _config;

    /// <summary>Rewrites lb.json with a change (the files' names relative to it, as at startup).</summary>
    Task ReloadAsync(Action<JsonObject> change)
    {
        change(_config!);
        return _lb!.WriteConfigAsync(_config!);
    }

    HttpClient Client(Version version) => new(new SocketsHttpHandler { SslOptions = { RemoteCertificateValidationCallback = _ca.Trust() } })
    {
        BaseAddress = _lb!.App.ClientUri(),
        DefaultRequestVersion = version,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>One new TLS connection: what the server presented and agreed to.</summary>
    async Task<(long Serial, string Alpn, SslProtocols Protocol)> HandshakeAsync(SslProtocols protocols = SslProtocols.None, params SslApplicationProtocol[] alpn)
    {
        var server = _lb!.App.ClientUri();
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, server.Port);
        await using var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = _ca.Trust(),
            ApplicationProtocols = alpn.Length > 0 ? [.. alpn] : [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            EnabledSslProtocols = protocols,
        }).WaitAsync(TimeSpan.FromSeconds(10));
        return (TestCa.Serial((X509Certificate2)tls.RemoteCertificate!), tls.NegotiatedApplicationProtocol.ToString(), tls.SslProtocol);
    }

    [Fact]
    public async Task Https_H2ByAlpn_ForwardsOverHttp2()
    {
        await StartAsync();
        using var client = Client(HttpVersion.Version20);

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("backend-a", await response.Content.ReadAsStringAsync());
        Assert.Equal("h2", (await HandshakeAsync()).Alpn);
    }

    [Fact]
    public async Task Https_Http11Client_Served()
    {
        await StartAsync();
        using var client = Client(HttpVersion.Version11);

        using var response = await client.GetAsync("/hello");

        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("backend-a", await response.Content.ReadAsStringAsync());
        Assert.Equal("http/1.1", (await HandshakeAsync(alpn: SslApplicationProtocol.Http11)).Alpn);
    }

    [Fact]
    public async Task Https_ListenProtocolsHttp1Only_OffersNoH2()
    {
        await StartAsync(configure: c => c["listenProtocols"] = new JsonArray("http1"));

        Assert.Equal("http/1.1", (await HandshakeAsync()).Alpn);
    }

    [Fact]
    public async Task Https_Tls12And13Accepted_OlderRefused()
    {
        await StartAsync();

        Assert.Equal(SslProtocols.Tls13, (await HandshakeAsync(SslProtocols.Tls13)).Protocol);
        Assert.Equal(SslProtocols.Tls12, (await HandshakeAsync(SslProtocols.Tls12)).Protocol);
#pragma warning disable SYSLIB0039 // TLS 1.1: the point is that the server refuses it
        await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(SslProtocols.Tls11));
#pragma warning restore SYSLIB0039
    }

    [Fact]
    public async Task CertificateRenamedOver_NewHandshakesGetItWithinTwoSeconds()
    {
        var lb = await StartAsync(serial: 1);
        Assert.Equal(1, (await HandshakeAsync()).Serial);
        using var open = Client(HttpVersion.Version20);
        Assert.Equal("backend-a", await open.GetStringAsync("/before"));

        var written = DateTime.UtcNow;
        using var next = _ca.Issue(2);
        TestCa.WritePem(next, CertificatePath, KeyPath);
        await lb.Logs.WaitForAsync($"serial {next.SerialNumber}", TimeSpan.FromSeconds(5));

        Assert.Equal(2, (await HandshakeAsync()).Serial);
        Assert.True(DateTime.UtcNow - written < TimeSpan.FromSeconds(2), $"took {(DateTime.UtcNow - written).TotalMilliseconds:0} ms");
        Assert.Equal("backend-a", await open.GetStringAsync("/after")); // an open connection goes on
    }

    [Fact]
    public async Task CertificateRewrittenInPlace_PickedUp()
    {
        var lb = await StartAsync(serial: 1);

        using var next = _ca.Issue(3);
        TestCa.WritePem(next, CertificatePath, KeyPath, inPlace: true);
        await lb.Logs.WaitForAsync($"serial {next.SerialNumber}", TimeSpan.FromSeconds(5));

        Assert.Equal(3, (await HandshakeAsync()).Serial);
    }

    [Fact]
    public async Task CertificateSymlinkSwapped_PickedUp()
    {
        // Kubernetes mounts a secret as certs/lb.pem -> ..data/lb.pem, ..data -> ..2026_01_01; an
        // update writes a new timestamped folder and renames a new ..data link over the old one.
        var certs = Path.Combine(_dir, "certs");
        Directory.CreateDirectory(certs);
        string Publish(long serial, string version)
        {
            var folder = Path.Combine(certs, version);
            Directory.CreateDirectory(folder);
            using var c = _ca.Issue(serial);
            TestCa.WritePem(c, Path.Combine(folder, "lb.pem"), Path.Combine(folder, "lb.key"));
            var link = Path.Combine(certs, "..data_tmp");
            File.CreateSymbolicLink(link, version);
            Assert.Equal(0, Rename(link, Path.Combine(certs, "..data"))); // atomic: a reader sees the old link or the new
            return c.SerialNumber;
        }
        Publish(10, "..v1");
        File.CreateSymbolicLink(Path.Combine(certs, "tls.pem"), "..data/lb.pem");
        File.CreateSymbolicLink(Path.Combine(certs, "tls.key"), "..data/lb.key");
        _backend = await TestBackend.StartAsync("a");
        var config = Balancer.Config(_backend);
        config["listen"] = "https://127.0.0.1:0";
        config["tls"] = new JsonObject { ["certificate"] = "certs/tls.pem", ["key"] = "certs/tls.key" };
        _lb = await Balancer.StartAsync(config, directory: _dir);
        Assert.Equal(10, (await HandshakeAsync()).Serial);

        var serial = Publish(11, "..v2");
        await _lb.Logs.WaitForAsync($"serial {serial}", TimeSpan.FromSeconds(5));

        Assert.Equal(11, (await HandshakeAsync()).Serial);
    }

    [Fact]
    public async Task BrokenPair_LoggedOnceAndOldCertificateStays()
    {
        var lb = await StartAsync(serial: 1);
        using var other = _ca.Issue(99);

        // A certificate beside a key that is not its own (the key file of another pair).
        using (var next = _ca.Issue(4)) File.WriteAllText(CertificatePath, next.ExportCertificatePem());
        File.WriteAllText(KeyPath, other.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        var rejected = await lb.Logs.WaitForAsync("TLS certificate change rejected", TimeSpan.FromSeconds(5));

        Assert.Contains("tls.key", rejected.Message);
        Assert.Contains("does not match tls.certificate", rejected.Message);
        Assert.Equal(1, (await HandshakeAsync()).Serial);

        // Fixed: the next valid pair is served, and the broken one was reported once only.
        using var fixedPair = _ca.Issue(5);
        TestCa.WritePem(fixedPair, CertificatePath, KeyPath);
        await lb.Logs.WaitForAsync($"serial {fixedPair.SerialNumber}", TimeSpan.FromSeconds(5));
        Assert.Equal(5, (await HandshakeAsync()).Serial);
        Assert.Single(lb.Logs.Lines, l => l.Message.Contains("TLS certificate change rejected", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GarbageCertificate_RejectedNamingTheKey()
    {
        var lb = await StartAsync(serial: 1);

        File.WriteAllText(CertificatePath, "not a certificate\n");
        var rejected = await lb.Logs.WaitForAsync("TLS certificate change rejected", TimeSpan.FromSeconds(5));

        Assert.Contains("tls.certificate", rejected.Message);
        Assert.Equal(1, (await HandshakeAsync()).Serial);
    }

    // Contract, Reload: every key but listen and admin applies without a restart, tls included.
    [Fact]
    public async Task Reload_TlsNamesOtherFiles_ServedAndWatchedFromThen()
    {
        var lb = await StartAsync(serial: 1);
        using var open = Client(HttpVersion.Version11);
        Assert.Equal("backend-a", await open.GetStringAsync("/before"));
        using var other = _ca.Issue(20);
        Directory.CreateDirectory(Path.Combine(_dir, "other"));
        TestCa.WritePem(other, Path.Combine(_dir, "other", "lb.pem"), Path.Combine(_dir, "other", "lb.key"));

        await ReloadAsync(c => c["tls"] = new JsonObject { ["certificate"] = "other/lb.pem", ["key"] = "other/lb.key" });
        await lb.Logs.WaitForAsync($"serial {other.SerialNumber}", TimeSpan.FromSeconds(5));

        Assert.Equal(20, (await HandshakeAsync()).Serial);
        Assert.Equal("backend-a", await open.GetStringAsync("/after")); // an open connection goes on
        var reloaded = (await lb.Logs.WaitForAsync("Configuration reloaded")).Message;
        Assert.Contains($"tls.certificate {CertificatePath} -> {Path.Combine(_dir, "other", "lb.pem")}", reloaded);
        Assert.Contains($"tls.key {KeyPath} -> {Path.Combine(_dir, "other", "lb.key")}", reloaded);
        // The new files are the ones watched now; the old ones are not.
        using var stale = _ca.Issue(21);
        TestCa.WritePem(stale, CertificatePath, KeyPath);
        using var next = _ca.Issue(22);
        TestCa.WritePem(next, Path.Combine(_dir, "other", "lb.pem"), Path.Combine(_dir, "other", "lb.key"));
        await lb.Logs.WaitForAsync($"serial {next.SerialNumber}", TimeSpan.FromSeconds(5));
        Assert.Equal(22, (await HandshakeAsync()).Serial);
        Assert.DoesNotContain(lb.Logs.Lines, l => l.Message.Contains($"serial {stale.SerialNumber}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Reload_TlsNamesAMissingFile_RejectedUntilItExists()
    {
        var lb = await StartAsync(serial: 1);

        await ReloadAsync(c => c["tls"] = new JsonObject { ["certificate"] = "later/lb.pem", ["key"] = "later/lb.key" });
        var rejected = await lb.Logs.WaitForAsync("rejected", TimeSpan.FromSeconds(5));

        Assert.Contains("tls.certificate", rejected.Message);
        Assert.Contains("file not found", rejected.Message);
        Assert.Equal(1, (await HandshakeAsync()).Serial); // the running pair stays
        var status = await lb.StatusAsync();
        Assert.Contains("tls.certificate", status.GetProperty("config").GetProperty("lastError").GetString());
        Assert.Equal("backend-a", await Client(HttpVersion.Version11).GetStringAsync("/still"));

        // The files arrive after lb.json named them: the same file now loads, and applies.
        using var later = _ca.Issue(30);
        Directory.CreateDirectory(Path.Combine(_dir, "later"));
        TestCa.WritePem(later, Path.Combine(_dir, "later", "lb.pem"), Path.Combine(_dir, "later", "lb.key"));
        await lb.Logs.WaitForAsync($"serial {later.SerialNumber}", TimeSpan.FromSeconds(5));
        Assert.Equal(30, (await HandshakeAsync()).Serial);
        await lb.Logs.WaitForAsync("Configuration reloaded", TimeSpan.FromSeconds(5));
        Assert.Single(lb.Logs.Lines, l => l.Message.Contains("rejected", StringComparison.Ordinal)); // logged once, not every poll
    }

    [Fact]
    public async Task Reload_ListenProtocols_AlpnFollowsWithoutARestart()
    {
        var lb = await StartAsync(serial: 1);
        Assert.Equal("h2", (await HandshakeAsync()).Alpn);

        await ReloadAsync(c => c["listenProtocols"] = new JsonArray("http1"));
        await lb.Logs.WaitForCountAsync("TLS certificate loaded", 1, TimeSpan.FromSeconds(5)); // the same files, a new ALPN list
        Assert.Equal("http/1.1", (await HandshakeAsync()).Alpn);
        using var h1 = Client(HttpVersion.Version11);
        Assert.Equal("backend-a", await h1.GetStringAsync("/h1"));

        await ReloadAsync(c => c["listenProtocols"] = new JsonArray("h2"));
        await lb.Logs.WaitForCountAsync("TLS certificate loaded", 2, TimeSpan.FromSeconds(5));
        await lb.Logs.WaitForAsync("changed: listenProtocols [http1] -> [h2]");
        Assert.Equal("h2", (await HandshakeAsync()).Alpn);
        using var h2 = Client(HttpVersion.Version20);
        using var answer = await h2.GetAsync("/h2");
        Assert.Equal(HttpVersion.Version20, answer.Version);
        // h2 alone: a client that will not speak it gets no HTTP/1.1 (as on a listener bound for HTTP/2 only).
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Client(HttpVersion.Version11).GetStringAsync("/h1-refused"));
    }

    [Fact]
    public async Task Metrics_CertificateExpirySeconds()
    {
        var lb = await StartAsync(serial: 1); // valid for 30 days

        var metrics = await lb.Admin.GetStringAsync("/metrics");

        var line = metrics.Split('\n').Single(l => l.StartsWith("loadbalancer_tls_certificate_expiry_seconds", StringComparison.Ordinal));
        var seconds = double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(seconds, TimeSpan.FromDays(30).TotalSeconds - 600, TimeSpan.FromDays(30).TotalSeconds);
    }

    // rename(2) itself: File.Move will not move a symbolic link to a folder.
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "rename", SetLastError = true)]
    static extern int Rename(string from, string to);

    public async ValueTask DisposeAsync()
    {
        if (_lb is not null) await _lb.DisposeAsync(); // deletes _dir
        if (_backend is not null) await _backend.DisposeAsync();
        _ca.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}
