using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The watcher's poll, called directly (no timer): a real lb.json in a temp folder, real channels.
// What it sends to the state task and the ticker, and what it logs.
public sealed class ConfigWatcherTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("lb-watch-").FullName;
    readonly string _path;
    readonly PipelineChannels _channels = new();
    readonly LogSink _logs = new();
    readonly ILoggerFactory _loggerFactory;
    readonly ConfigWatcher _watcher;

    public ConfigWatcherTests()
    {
        _path = Path.Combine(_dir, "lb.json");
        _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));
        Write(Json("http://127.0.0.1:8000"));
        var running = ConfigLoader.Load(_path);
        _watcher = new ConfigWatcher(_path, running, new StateClient(_channels), _channels.Periods.Writer,
            new FakeTimeProvider(), _loggerFactory.CreateLogger<ConfigWatcher>());
    }

    public void Dispose()
    {
        _watcher.Dispose();
        _loggerFactory.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    static string Json(string backend, string interval = "10s", string listen = "http://127.0.0.1:8080", string extra = "") => $$"""
        {
          "listen": "{{listen}}",
          "backends": [ { "url": "{{backend}}" } ],
          "healthCheck": { "interval": "{{interval}}" }{{extra}}
        }
        """;

    void Write(string text) => File.WriteAllText(_path, text);

    /// <summary>What the watcher sent to the state task since the last call.</summary>
    List<StateEvent> Sent()
    {
        var sent = new List<StateEvent>();
        while (_channels.Events.Reader.TryRead(out var e)) sent.Add(e);
        return sent;
    }

    List<LogLine> Logged(LogLevel level) => _logs.Lines.Where(l => l.Level == level).ToList();

    async Task BaselineAsync()
    {
        await _watcher.PollAsync(); // sees the file it started with: nothing to do
        Assert.Empty(Sent());
    }

    [Fact]
    public async Task PollAsync_FileUnchanged_SendsNothing()
    {
        await BaselineAsync();
        await _watcher.PollAsync();

        Assert.Empty(Sent());
        Assert.Empty(_logs.Lines);
        Assert.False(_channels.Periods.Reader.TryRead(out _));
    }

    [Fact]
    public async Task PollAsync_ValidChange_SendsConfigChangedOnce()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8001", extra: """, "balancing": "random" """));
        await _watcher.PollAsync();
        await _watcher.PollAsync();

        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal("http://127.0.0.1:8001", Assert.Single(changed.Config.Backends).Url);
        Assert.Equal(BalancingNames.Random, changed.Config.Balancing);
        Assert.Empty(Logged(LogLevel.Error));
    }

    [Fact]
    public async Task PollAsync_AccessLogChanged_SentToTheWriterAndTheStateTask()
    {
        using var watcher = new ConfigWatcher(_path, ConfigLoader.Load(_path), new StateClient(_channels), _channels.Periods.Writer,
            new FakeTimeProvider(), _loggerFactory.CreateLogger<ConfigWatcher>(), _channels.AccessLogSettings.Writer);
        await watcher.PollAsync();

        Write(Json("http://127.0.0.1:8000", extra: """, "accessLog": { "path": "access.log", "format": "combined" } """));
        await watcher.PollAsync();

        Assert.True(_channels.AccessLogSettings.Reader.TryRead(out var sent));
        Assert.Equal(new AccessLogConfig(Path.Combine(_dir, "access.log"), AccessLogFormat.Combined), sent);
        Assert.IsType<ConfigChanged>(Assert.Single(Sent())); // the reload's log line names the change
        Assert.False(_channels.Periods.Reader.TryRead(out _));
    }

    [Fact]
    public async Task PollAsync_MisspeltKeyAdded_WarnsOnceThoughNothingElseChanged()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8000", extra: """, "retires": 5 """));
        await _watcher.PollAsync();
        await _watcher.PollAsync();

        var warning = Assert.Single(Logged(LogLevel.Warning));
        Assert.Equal($"Configuration: {_path}: retires: unknown key, ignored (did you mean retries?)", warning.Message);
        Assert.Empty(Sent()); // the meaning did not change: nothing to reconcile
    }

    [Fact]
    public async Task PollAsync_RewrittenWithSameMeaning_SendsNothing()
    {
        await BaselineAsync();

        Write("// reformatted\n" + Json("http://127.0.0.1:8000"));
        await _watcher.PollAsync();

        Assert.Empty(Sent());
    }

    [Fact]
    public async Task PollAsync_InvalidFile_LoggedAndToldOnceAfterTwoPolls()
    {
        await BaselineAsync();

        Write(Json("ftp://127.0.0.1:8001"));
        await _watcher.PollAsync();
        Assert.Empty(Logged(LogLevel.Error)); // maybe an editor mid-write: not yet
        Assert.Empty(Sent());

        await _watcher.PollAsync(); // unchanged for a whole poll: it is meant
        var error = Assert.Single(Logged(LogLevel.Error));
        Assert.Contains($"{_path}: backends[0].url:", error.Message);
        Assert.Contains("running configuration stays", error.Message);
        var rejected = Assert.IsType<ConfigRejected>(Assert.Single(Sent())); // for /status and the counter
        Assert.StartsWith($"{_path}: backends[0].url:", rejected.Problem);
        Assert.EndsWith(rejected.Problem, error.Message); // the same one line

        await _watcher.PollAsync();
        await _watcher.PollAsync();
        Assert.Single(Logged(LogLevel.Error)); // once, not every poll
        Assert.Empty(Sent());
        Assert.False(_channels.Periods.Reader.TryRead(out _));
    }

    [Fact]
    public async Task PollAsync_HalfWrittenThenFixed_NothingLoggedAndTheFixSent()
    {
        await BaselineAsync();

        Write("{ \"backends\": [ { \"url\": \"http://127.0.0.1:80"); // an editor mid-write
        await _watcher.PollAsync();
        Write(Json("http://127.0.0.1:8002"));
        await _watcher.PollAsync();
        await _watcher.PollAsync();

        Assert.Empty(Logged(LogLevel.Error));
        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal("http://127.0.0.1:8002", changed.Config.Backends[0].Url);
    }

    [Fact]
    public async Task PollAsync_InvalidThenAnotherInvalid_EachLoggedOnce()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8000", interval: "soon"));
        await _watcher.PollAsync();
        await _watcher.PollAsync();
        Write(Json("http://127.0.0.1:8000", interval: "later"));
        await _watcher.PollAsync();
        await _watcher.PollAsync();
        await _watcher.PollAsync();

        var errors = Logged(LogLevel.Error);
        Assert.Equal(2, errors.Count);
        Assert.Contains("healthCheck.interval: soon", errors[0].Message);
        Assert.Contains("healthCheck.interval: later", errors[1].Message);
        var sent = Sent();
        Assert.Equal(2, sent.Count);
        Assert.All(sent, e => Assert.IsType<ConfigRejected>(e));
    }

    [Fact]
    public async Task PollAsync_RejectedThenTheEditUndone_SentAsAChangeSoTheFixShows()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8000", interval: "soon"));
        await _watcher.PollAsync();
        await _watcher.PollAsync();
        Assert.IsType<ConfigRejected>(Assert.Single(Sent()));

        Write(Json("http://127.0.0.1:8000")); // means exactly what runs
        await _watcher.PollAsync();
        await _watcher.PollAsync();

        // Applied like any valid file: the reload is logged and /status's lastError clears.
        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal("http://127.0.0.1:8000", changed.Config.Backends[0].Url);

        Write("// reformatted\n" + Json("http://127.0.0.1:8000")); // nothing rejected since: nothing to tell
        await _watcher.PollAsync();
        Assert.Empty(Sent());
    }

    [Fact]
    public async Task PollAsync_ListenChanged_WarnsAndKeepsTheOldListen()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8001", listen: "http://127.0.0.1:9999"));
        await _watcher.PollAsync();

        var warning = Assert.Single(Logged(LogLevel.Warning));
        Assert.Contains("restart", warning.Message);
        Assert.Contains("http://127.0.0.1:8080", warning.Message); // where it still listens
        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal(new Uri("http://127.0.0.1:8080"), changed.Config.Listen);
        Assert.Equal(ConfigLoader.DefaultAdmin, changed.Config.Admin);
        Assert.Equal("http://127.0.0.1:8001", changed.Config.Backends[0].Url); // the rest applies
    }

    [Fact]
    public async Task PollAsync_ListenProtocolsChangedOnHttp_WarnsAndKeepsTheRunningOnes()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8001", extra: ", \"listenProtocols\": [\"h2c\"]"));
        await _watcher.PollAsync();

        var warning = Assert.Single(Logged(LogLevel.Warning));
        Assert.Contains("listenProtocols on an http:// listen changes only with a restart", warning.Message);
        Assert.Contains("still [\"http1\"]", warning.Message);
        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal(Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, changed.Config.ListenProtocols);
        Assert.Equal("http://127.0.0.1:8001", changed.Config.Backends[0].Url); // the rest applies
    }

    [Fact]
    public async Task PollAsync_AdminChanged_WarnsAndKeepsTheOldAdmin()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8005", extra: """, "admin": "http://127.0.0.1:9998" """));
        await _watcher.PollAsync();

        Assert.Contains("admin on http://127.0.0.1:8081", Assert.Single(Logged(LogLevel.Warning)).Message);
        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal(ConfigLoader.DefaultAdmin, changed.Config.Admin);
        Assert.Equal("http://127.0.0.1:8005", changed.Config.Backends[0].Url);
    }

    [Fact]
    public async Task PollAsync_IntervalChanged_WritesTheNewPeriod()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8000", interval: "2s"));
        await _watcher.PollAsync();

        Assert.True(_channels.Periods.Reader.TryRead(out var period));
        Assert.Equal(TimeSpan.FromSeconds(2), period);
        var changed = Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
        Assert.Equal(TimeSpan.FromSeconds(2), changed.Config.HealthCheck.Interval);
    }

    [Fact]
    public async Task PollAsync_OtherChange_WritesNoPeriod()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8001"));
        await _watcher.PollAsync();

        Assert.Single(Sent());
        Assert.False(_channels.Periods.Reader.TryRead(out _));
    }

    [Fact]
    public async Task PollAsync_FileDeleted_KeepsRunningQuietlyThenSeesItBack()
    {
        await BaselineAsync();

        File.Delete(_path);
        await _watcher.PollAsync();
        Assert.Empty(Sent());
        Assert.Empty(_logs.Lines);

        Write(Json("http://127.0.0.1:8003"));
        await _watcher.PollAsync();
        Assert.IsType<ConfigChanged>(Assert.Single(Sent()));
    }

    [Fact]
    public async Task PollAsync_ReplacedByRename_Seen()
    {
        await BaselineAsync();

        var next = Path.Combine(_dir, "lb.json.tmp");
        File.WriteAllText(next, Json("http://127.0.0.1:8004"));
        File.Move(next, _path, overwrite: true);
        await _watcher.PollAsync();

        Assert.Equal("http://127.0.0.1:8004", Assert.IsType<ConfigChanged>(Assert.Single(Sent())).Config.Backends[0].Url);
    }

    [Fact]
    public async Task PollAsync_ChangedBackThenAgain_EachChangeSent()
    {
        await BaselineAsync();

        Write(Json("http://127.0.0.1:8001"));
        await _watcher.PollAsync();
        Write(Json("http://127.0.0.1:8000"));
        await _watcher.PollAsync();

        var sent = Sent().Cast<ConfigChanged>().Select(c => c.Config.Backends[0].Url);
        Assert.Equal(["http://127.0.0.1:8001", "http://127.0.0.1:8000"], sent);
    }
}
