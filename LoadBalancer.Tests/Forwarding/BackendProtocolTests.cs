using System.Net;
using System.Text.Json.Nodes;
using LoadBalancer.Tests.Resilience;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LoadBalancer.Tests.Forwarding;

// backends[].protocol and backends[].tls over real sockets: an h2c backend (Kestrel with HTTP/2
// only, no TLS), https backends checked against a CA made in code, with the server name sent as
// SNI and checked; a wrong CA or name is a TLS failure, counted against the backend and retried
// elsewhere even for a POST (nothing was sent). Probes speak each backend's protocol and TLS.
public sealed class BackendProtocolTests : IAsyncDisposable
{
    readonly TestCa _ca = TestCa.Create();
    readonly List<IAsyncDisposable> _owned = [];

    // What the backend saw: its protocol, the TLS server name the balancer sent, the Host header.
    static readonly RequestDelegate Describe = context => context.Response.WriteAsync(
        $"{context.Request.Protocol} sni={context.Features.Get<ITlsHandshakeFeature>()?.HostName} host={context.Request.Host}");

    async Task<TestBackend> BackendAsync(string name, TestCa? ca = null, HttpProtocols? protocols = null, params string[] names)
    {
        var backend = await TestBackend.StartAsync(name, handler: Describe,
            certificate: ca?.Issue(DateTime.UtcNow.Ticks, names), protocols: protocols);
        _owned.Add(backend);
        return backend;
    }

    async Task<Balancer> BalancerAsync(JsonObject config, string? caPem = null)
    {
        var dir = Directory.CreateTempSubdirectory("lb-backend-tls-").FullName;
        if (caPem is not null) File.WriteAllText(Path.Combine(dir, "ca.pem"), caPem);
        var lb = await Balancer.StartAsync(config, directory: dir);
        _owned.Add(lb);
        return lb;
    }

    static JsonObject Entry(JsonObject config, int i) => config["backends"]![i]!.AsObject();

    [Fact]
    public async Task H2cBackend_ForwardedAndProbedOverHttp2()
    {
        var a = await BackendAsync("a", protocols: HttpProtocols.Http2);
        var config = Balancer.Config(a);
        Entry(config, 0)["protocol"] = "h2c";
        var lb = await BalancerAsync(config);

        await lb.WaitForStatusAsync(a, s => s.State() == "healthy"); // the probe spoke h2c too
        var answer = await lb.Client.GetStringAsync("/");

        Assert.StartsWith("HTTP/2 ", answer);
        Assert.Contains($"host={lb.App.ClientUri().Authority}", answer); // Host passes through
    }

    [Fact]
    public async Task Http1ToH2cOnlyBackend_Fails()
    {
        // The control for the test above: without protocol h2c the same backend cannot be used.
        var a = await BackendAsync("a", protocols: HttpProtocols.Http2);
        var lb = await BalancerAsync(Balancer.Config(a));

        using var response = await lb.Client.GetAsync("/");

        Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("http1", "HTTP/1.1")]
    [InlineData("h2", "HTTP/2")]
    public async Task HttpsBackend_TestCaAndServerName_VerifiedAndSentAsSni(string protocol, string seen)
    {
        var a = await BackendAsync("a", _ca, names: "api.internal");
        var config = Balancer.Config(a);
        Entry(config, 0)["protocol"] = protocol;
        Entry(config, 0)["tls"] = new JsonObject { ["ca"] = "ca.pem", ["serverName"] = "api.internal" };
        var lb = await BalancerAsync(config, _ca.Pem);

        await lb.WaitForStatusAsync(a, s => s.State() == "healthy");
        var answer = await lb.Client.GetStringAsync("/");

        Assert.StartsWith($"{seen} sni=api.internal host={lb.App.ClientUri().Authority}", answer);
    }

    // SocketsHttpHandler keys an https pool by the request's Host header (its TLS name): a client
    // cycling Host values would get a pool, a maxConnectionsPerBackend budget and a handshake per
    // value. The balancer does the TLS itself, so the pool is the backend's alone.
    [Fact]
    public async Task HttpsBackend_ClientCyclesHostHeaders_OneBackendConnectionServesThemAll()
    {
        var a = await BackendAsync("a", _ca);
        var config = Balancer.Config(a);
        Entry(config, 0)["tls"] = new JsonObject { ["ca"] = "ca.pem" };
        config["healthCheck"]!["interval"] = "1h";
        var lb = await BalancerAsync(config, _ca.Pem);
        await lb.WaitForStatusAsync(a, s => s.State() == "healthy"); // the probe has its own connection
        var before = a.Connections;

        for (var i = 0; i < 20; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/") { Headers = { Host = $"tenant{i}.example" } };
            using var response = await lb.Client.SendAsync(request);
            Assert.EndsWith($"host=tenant{i}.example", await response.Content.ReadAsStringAsync()); // Host still passes through
        }

        Assert.Equal(1, a.Connections - before); // one after another: one pooled connection, reused
    }

    [Fact]
    public async Task HttpsBackend_NoServerName_UrlHostChecked()
    {
        var a = await BackendAsync("a", _ca); // its certificate names 127.0.0.1
        var config = Balancer.Config(a);
        Entry(config, 0)["tls"] = new JsonObject { ["ca"] = "ca.pem" };
        var lb = await BalancerAsync(config, _ca.Pem);

        Assert.StartsWith("HTTP/1.1 ", await lb.Client.GetStringAsync("/"));
    }

    public static TheoryData<string> Mistrusted => ["wrong CA", "wrong name", "system store"];

    [Theory]
    [MemberData(nameof(Mistrusted))]
    public async Task HttpsBackend_NotVerified_TlsFailureCountedAndPostRetriedElsewhere(string mistake)
    {
        using var otherCa = TestCa.Create("Another CA");
        var bad = await BackendAsync("bad", _ca);
        var good = await BackendAsync("good");
        var config = Balancer.Config(bad, good);
        config["passiveHealth"] = new JsonObject { ["consecutiveFailures"] = 100 }; // stays in rotation
        Entry(config, 0)["tls"] = mistake switch
        {
            "wrong CA" => new JsonObject { ["ca"] = "ca.pem" },
            "wrong name" => new JsonObject { ["ca"] = "ca.pem", ["serverName"] = "other.internal" },
            _ => null, // the test CA is in no system store
        };
        var lb = await BalancerAsync(config, mistake == "wrong CA" ? otherCa.Pem : _ca.Pem);

        // Round-robin: one of the two POSTs is tried on the bad backend first.
        for (var i = 0; i < 2; i++)
        {
            using var response = await lb.Client.PostAsync("/order", new StringContent("x"));
            Assert.Equal("HTTP/1.1 sni= host=" + lb.App.ClientUri().Authority, await response.Content.ReadAsStringAsync());
        }

        // The probe says the same, once its first round has ended (it may lag the requests).
        var entry = await lb.WaitForStatusAsync(bad, s => s.Failures() >= 1 && s.GetProperty("lastProbe").ValueKind == System.Text.Json.JsonValueKind.Object);
        Assert.Equal(0, bad.Requests); // no request ever reached it
        Assert.Contains("TLS failure", entry.GetProperty("lastProbe").GetProperty("error").GetString());
        Assert.Contains(lb.Logs.Lines, l => l.Message.Contains($"Forward to {bad.Url} failed: TLS failure", StringComparison.Ordinal));
        Assert.Contains("reason=\"TLS failure\"", await lb.Admin.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task HttpsBackend_InsecureSkipVerify_Accepted()
    {
        using var otherCa = TestCa.Create("Unknown CA");
        var a = await BackendAsync("a", otherCa);
        var config = Balancer.Config(a);
        Entry(config, 0)["tls"] = new JsonObject { ["insecureSkipVerify"] = true };
        var lb = await BalancerAsync(config);

        Assert.StartsWith("HTTP/1.1 ", await lb.Client.GetStringAsync("/"));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var x in Enumerable.Reverse(_owned)) await x.DisposeAsync();
        _ca.Dispose();
    }
}
