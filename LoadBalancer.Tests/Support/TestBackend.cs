using System.Net;
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
    public string Url => $"http://127.0.0.1:{Port}";
    public int Requests => Volatile.Read(ref _requests);
    /// <summary>TCP connections accepted so far (to see connection reuse).</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Status code for /healthcheck (200 by default).</summary>
    public int HealthStatus { get; set; } = 200;

    /// <summary>Replaces the default answer for everything but /healthcheck.</summary>
    public RequestDelegate? Handler { get; set; }

    TestBackend(string name) => Name = name;

    public static async Task<TestBackend> StartAsync(string name, int port = 0, RequestDelegate? handler = null)
    {
        var backend = new TestBackend(name) { Handler = handler };
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
            k.Listen(IPAddress.Loopback, port, l => l.Use(next => c => { Interlocked.Increment(ref _connections); return next(c); }));
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
