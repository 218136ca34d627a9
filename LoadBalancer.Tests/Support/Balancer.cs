using System.Text.Json;
using System.Text.Json.Nodes;
using LoadBalancer.Configuration;
using LoadBalancer.Probing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Support;

// The real balancer, in process: writes lb.json to a temp folder, builds the app exactly as
// Program.Main does (listen and admin on 127.0.0.1 port 0), starts it. Logs are captured
// in Logs so tests can assert what an operator would read.
public sealed class Balancer : IAsyncDisposable
{
    readonly string _dir;
    public WebApplication App { get; }
    public string ConfigPath { get; }
    public HttpClient Client { get; }
    public HttpClient Admin { get; }
    public LogSink Logs { get; }

    Balancer(string dir, string path, WebApplication app, LogSink logs)
    {
        _dir = dir;
        ConfigPath = path;
        App = app;
        Logs = logs;
        Client = new HttpClient { BaseAddress = app.ClientUri(), Timeout = TimeSpan.FromSeconds(30) };
        Admin = new HttpClient { BaseAddress = app.AdminUri(), Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>lb.json for these backends; change what you need in the returned object.</summary>
    public static JsonObject Config(params TestBackend[] backends) => new()
    {
        ["listen"] = "http://127.0.0.1:0",
        ["admin"] = "http://127.0.0.1:0",
        ["backends"] = new JsonArray(backends.Select(b => (JsonNode)new JsonObject { ["url"] = b.Url }).ToArray()),
        ["healthCheck"] = new JsonObject { ["interval"] = "1h", ["timeout"] = "2s" },
    };

    /// <param name="shutdownTimeout">How long a stop may drain (the app's default is 30 s).</param>
    /// <param name="directory">Where lb.json goes (with files it names, e.g. certificates); a new temp folder by default. Deleted at dispose.</param>
    public static async Task<Balancer> StartAsync(JsonObject config, TimeProvider? time = null, IBackendProbe? probe = null,
        TimeSpan? shutdownTimeout = null, string? directory = null)
    {
        var dir = directory ?? Directory.CreateTempSubdirectory("lb-test-").FullName;
        var path = Path.Combine(dir, "lb.json");
        await File.WriteAllTextAsync(path, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        // A test that stops a backend frees its port, and port 0 may then give that very port to
        // this balancer's listener: its probes of the "stopped" backend would reach itself. Rare,
        // but then the whole test means something else, so such a start is made again.
        var backendPorts = (config["backends"] as JsonArray ?? []).Select(b => b?["url"]?.GetValue<string>())
            .Select(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) ? uri.Port : -1).ToHashSet();
        for (var attempt = 1; ; attempt++)
        {
            var logs = new LogSink();
            var app = Program.Build(ConfigLoader.Load(path), path, new Program.Options
            {
                Time = time ?? TimeProvider.System,
                Probe = probe,
                MeterName = $"LoadBalancer.Test.{Guid.NewGuid():N}", // each balancer exports only its own metrics
                Logging = l => { l.AddProvider(logs); l.SetMinimumLevel(LogLevel.Debug); },
                ShutdownTimeout = shutdownTimeout ?? new Program.Options().ShutdownTimeout,
            });
            await app.StartAsync();
            if (attempt == 5 || !backendPorts.Contains(app.ClientUri().Port) && !backendPorts.Contains(app.AdminUri().Port))
                return new Balancer(dir, path, app, logs);
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>Rewrites lb.json in place (the config watcher picks it up within a second).</summary>
    public Task WriteConfigAsync(JsonObject config) =>
        File.WriteAllTextAsync(ConfigPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public async Task<JsonElement> StatusAsync() =>
        JsonDocument.Parse(await Admin.GetStringAsync("/status")).RootElement;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        Admin.Dispose();
        await App.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        await App.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
