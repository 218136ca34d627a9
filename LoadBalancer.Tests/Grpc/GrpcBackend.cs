using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Grpc;

// A real Grpc.AspNetCore server as a backend: Kestrel on 127.0.0.1, port 0, HTTP/2 only without
// TLS (h2c), serving the Tester service and GET /healthcheck for the balancer's probes.
public sealed class GrpcBackend : IAsyncDisposable
{
    WebApplication? _app;

    GrpcBackend(string name) => Name = name;

    public string Name { get; }
    public int Port { get; private set; }
    public string Url => $"http://127.0.0.1:{Port}";

    /// <summary>Status code for /healthcheck (200 by default).</summary>
    public int HealthStatus { get; set; } = 200;

    public TaskCompletionSource HangStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource HangCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<GrpcBackend> StartAsync(string name)
    {
        var backend = new GrpcBackend(name);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(backend);
        var app = builder.Build();
        app.MapGrpcService<TesterService>();
        app.MapGet("/healthcheck", context =>
        {
            context.Response.StatusCode = backend.HealthStatus;
            return context.Response.WriteAsync("ok");
        });
        await app.StartAsync();
        backend.Port = new Uri(app.Urls.First()).Port;
        backend._app = app;
        return backend;
    }

    public async Task StopAsync()
    {
        if (_app is null) return;
        await _app.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
        await _app.DisposeAsync();
        _app = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
