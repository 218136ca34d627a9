using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Support;

// A real backend for integration tests: Kestrel on 127.0.0.1, port 0 (or a given port, to
// bring a stopped backend back on the same address). Answers "backend-<name>" on every path
// and "ok" on /healthcheck unless told otherwise; counts requests and TCP connections.
public sealed class TestBackend : IAsyncDisposable
{
    WebApplication? _app;
    int _requests, _connections;

    public string Name { get; }
    public int Port { get; private set; }
    public string Url => $"{(Certificate is null ? "http" : "https")}://{Address}:{Port}";

    /// <summary>Set: the backend speaks TLS with it (https://).</summary>
    public X509Certificate2? Certificate { get; private init; }

    /// <summary>What the listener speaks (Kestrel's default: HTTP/1.1, and HTTP/2 by ALPN over TLS); Http2 alone on http is h2c.</summary>
    public Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols? Protocols { get; private init; }
    public int Requests => Volatile.Read(ref _requests);
    /// <summary>TCP connections accepted so far (to see connection reuse).</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Status code for /healthcheck (200 by default).</summary>
    public int HealthStatus { get; set; } = 200;

    /// <summary>Replaces the default answer for everything but /healthcheck.</summary>
    public RequestDelegate? Handler { get; set; }

    TestBackend(string name) => Name = name;

    /// <summary>The loopback address it listens on (127.0.0.1 unless told: discovery tests give
    /// backends of one host name 127.0.0.2, 127.0.0.3 ... on one port).</summary>
    public IPAddress Address { get; private init; } = IPAddress.Loopback;

    public static async Task<TestBackend> StartAsync(string name, int port = 0, RequestDelegate? handler = null,
        X509Certificate2? certificate = null, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols? protocols = null,
        IPAddress? address = null)
    {
        var backend = new TestBackend(name) { Handler = handler, Certificate = certificate, Protocols = protocols, Address = address ?? IPAddress.Loopback };
        await backend.StartOnAsync(port);
        return backend;
    }

    async Task StartOnAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null;
            k.Listen(Address, port, l =>
            {
                if (Protocols is { } protocols) l.Protocols = protocols;
                l.Use(next => c => { Interlocked.Increment(ref _connections); return next(c); });
                // Through a selector, so that the TLS feature records the SNI the client sent.
                if (Certificate is { } certificate)
                    l.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions { ServerCertificateSelector = (_, _) => certificate });
            });
        });
        var app = builder.Build();
        app.UseWebSockets();
        app.Run(async context =>
        {
            if (context.Request.Path == "/healthcheck")
            {
                context.Response.StatusCode = HealthStatus;
                await context.Response.WriteAsync("ok");
                return;
            }
            Interlocked.Increment(ref _requests);
            if (Handler is { } h) await h(context);
            else await context.Response.WriteAsync($"backend-{Name}");
        });
        await app.StartAsync();
        Port = new Uri(app.Urls.First()).Port;
        _app = app;
    }

    /// <summary>Stops listening: connections are refused from now on.</summary>
    public async Task StopAsync()
    {
        if (_app is null) return;
        await _app.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
        await _app.DisposeAsync();
        _app = null;
    }

    /// <summary>Starts again on the same port.</summary>
    public Task RestartAsync() => StartOnAsync(Port);

    public async ValueTask DisposeAsync() => await StopAsync();
}
