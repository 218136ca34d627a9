using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// Contract, "Edge": a certificate or key that is missing or invalid at startup ends the process
// with exit 2 and one stderr line naming tls.certificate or tls.key, before anything listens
// (the ports are held by the test: a balancer that bound them first would exit 1 instead).
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class TlsStartupErrorTests
{
    public static TheoryData<string, string[]> Broken => new()
    {
        { "no tls section", ["tls.certificate", "is required"] },
        { "certificate file missing", ["tls.certificate", "file not found"] },
        { "key file missing", ["tls.key", "file not found"] },
        { "certificate not PEM", ["tls.certificate", "no PEM certificate"] },
        { "key not PEM", ["tls.key", "no usable PEM private key"] },
        { "key of another certificate", ["tls.key", "does not match tls.certificate"] },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public async Task Start_BrokenTlsFiles_ExitsTwoNamingTheKey(string problem, string[] expected)
    {
        using var ca = TestCa.Create();
        using var listen = Hold();
        using var admin = Hold();
        var dir = Directory.CreateTempSubdirectory("lb-tls-start-").FullName;
        try
        {
            using var pair = ca.Issue(1);
            using var other = ca.Issue(2);
            TestCa.WritePem(pair, Path.Combine(dir, "lb.pem"), Path.Combine(dir, "lb.key"));
            switch (problem)
            {
                case "certificate file missing": File.Delete(Path.Combine(dir, "lb.pem")); break;
                case "key file missing": File.Delete(Path.Combine(dir, "lb.key")); break;
                case "certificate not PEM": File.WriteAllText(Path.Combine(dir, "lb.pem"), "hello\n"); break;
                case "key not PEM": File.WriteAllText(Path.Combine(dir, "lb.key"), "hello\n"); break;
                case "key of another certificate": File.WriteAllText(Path.Combine(dir, "lb.key"), other.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()); break;
            }
            var tls = problem == "no tls section" ? "" : """, "tls": { "certificate": "lb.pem", "key": "lb.key" }""";
            var path = Path.Combine(dir, "lb.json");
            File.WriteAllText(path, $$"""
                { "listen": "https://127.0.0.1:{{Port(listen)}}", "admin": "http://127.0.0.1:{{Port(admin)}}",
                  "backends": [ { "url": "http://127.0.0.1:9" } ]{{tls}} }
                """);

            await using var lb = LbProcess.Start("--config", path);
            var exitCode = await lb.WaitForExitAsync();

            Assert.True(exitCode == 2, $"{problem}: exit code {exitCode}; stderr: {lb.StandardError}");
            var line = Assert.Single(lb.StandardErrorLines);
            Assert.StartsWith($"error: {path}: ", line);
            foreach (var text in expected) Assert.Contains(text, line);
            Assert.DoesNotContain("Exception", line);
            Assert.Equal("", lb.StandardOutput);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Check_ValidPair_Ok()
    {
        using var ca = TestCa.Create();
        var dir = Directory.CreateTempSubdirectory("lb-tls-check-").FullName;
        try
        {
            using (var pair = ca.Issue(1)) TestCa.WritePem(pair, Path.Combine(dir, "lb.pem"), Path.Combine(dir, "lb.key"));
            var path = Path.Combine(dir, "lb.json");
            File.WriteAllText(path, """
                { "listen": "https://127.0.0.1:8443", "tls": { "certificate": "lb.pem", "key": "lb.key" },
                  "backends": [ { "url": "http://127.0.0.1:9" } ] }
                """);

            await using var lb = LbProcess.Start("--check", "--config", path);

            Assert.Equal(0, await lb.WaitForExitAsync());
            Assert.Contains(": ok (1 backends", lb.StandardOutput);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    static TcpListener Hold()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    static int Port(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;
}
