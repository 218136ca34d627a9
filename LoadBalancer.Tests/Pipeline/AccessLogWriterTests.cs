using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using LoadBalancer.Admin;
using LoadBalancer.Configuration;
using LoadBalancer.Forwarding;
using LoadBalancer.Pipeline;
using LoadBalancer.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Pipeline;

// The access-log stage without the host: its own channels (a tiny one where the test wants it
// full), the request path's AccessLog gate, a fake clock for the once-a-second rotation check,
// and a real file in a temp folder. Stopping the stage writes what is queued, so most tests
// read the file after StopAsync and need no waiting at all.
public sealed class AccessLogWriterTests : IAsyncDisposable
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    readonly string _dir = Directory.CreateTempSubdirectory("lb-access-").FullName;
    readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));
    readonly LbMetrics _metrics = new($"LoadBalancer.Test.{Guid.NewGuid():N}");
    readonly LogSink _logs = new();
    readonly ILoggerFactory _loggers;
    readonly Channel<AccessLogConfig> _settings = Channel.CreateBounded<AccessLogConfig>(1);
    Channel<AccessRecord> _records = Channel.CreateBounded<AccessRecord>(100);
    AccessLog? _gate;
    AccessLogWriter? _writer;

    public AccessLogWriterTests() =>
        _loggers = LoggerFactory.Create(b => b.AddProvider(_logs).SetMinimumLevel(LogLevel.Trace));

    string PathOf(string name) => Path.Combine(_dir, name);

    AccessLog Gate => _gate!;

    AccessLogWriter Writer(AccessLogConfig config, int capacity = 100)
    {
        _records = Channel.CreateBounded<AccessRecord>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        _gate = new AccessLog(_records.Writer, _metrics);
        _writer = new AccessLogWriter(_records.Reader, _settings.Reader, config, _gate, _time, _loggers.CreateLogger<AccessLogWriter>());
        return _writer;
    }

    static AccessRecord Record(string id, string? backend = "http://127.0.0.1:8000") => new(
        new DateTimeOffset(2026, 11, 25, 12, 0, 0, 123, TimeSpan.Zero), IPAddress.Parse("10.0.0.7"), "GET", "/a?b=1&c=<d>",
        "HTTP/1.1", 200, 5, 12, 3.14159, id, backend,
        backend is null ? [] : [new AttemptRecord(backend, Outcome.Response, 2.5)], 0, Termination.Ok, "http://ref/", "curl/8.5.0");

    static string IdOf(string line) => JsonDocument.Parse(line).RootElement.GetProperty("requestId").GetString()!;

    public async ValueTask DisposeAsync()
    {
        if (_writer is not null)
        {
            await _writer.StopAsync(CancellationToken.None);
            _writer.Dispose();
        }
        _loggers.Dispose();
        _metrics.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    // ---- formats: pure ---------------------------------------------------------------------------

    [Fact]
    public void Line_Json_TheContractsFieldsInOrder()
    {
        var line = AccessLogWriter.Line(Record("abc"), AccessLogFormat.Json);

        Assert.Equal("""
            {"time":"2026-11-25T12:00:00.123Z","client":"10.0.0.7","method":"GET","target":"/a?b=1&c=<d>","protocol":"HTTP/1.1","status":200,"bytesIn":5,"bytesOut":12,"durationMs":3.142,"requestId":"abc","backend":"http://127.0.0.1:8000","attempts":[{"backend":"http://127.0.0.1:8000","outcome":"response","durationMs":2.5}],"queueMs":0,"termination":"ok","referer":"http://ref/","userAgent":"curl/8.5.0"}

            """, line);
    }

    [Fact]
    public void Line_JsonBalancerAnsweredItself_NullBackendNoAttempts()
    {
        var record = Record("x", backend: null) with { Status = 503, Termination = Termination.NoBackend, Client = null, Referer = null };

        var json = JsonDocument.Parse(AccessLogWriter.Line(record, AccessLogFormat.Json)).RootElement;

        Assert.Equal(JsonValueKind.Null, json.GetProperty("backend").ValueKind);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("client").ValueKind);
        Assert.Equal(JsonValueKind.Null, json.GetProperty("referer").ValueKind);
        Assert.Equal(0, json.GetProperty("attempts").GetArrayLength());
        Assert.Equal("no-backend", json.GetProperty("termination").GetString());
    }

    [Fact]
    public void Line_JsonControlCharactersAndQuotes_EscapedOnOneLine()
    {
        var line = AccessLogWriter.Line(Record("x") with { UserAgent = "a\"b\nc\\" }, AccessLogFormat.Json);

        Assert.Single(line.TrimEnd('\n').Split('\n'));
        Assert.Equal("a\"b\nc\\", JsonDocument.Parse(line).RootElement.GetProperty("userAgent").GetString());
    }

    [Fact]
    public void Line_Combined_NginxCombinedFormat()
    {
        Assert.Equal(
            "10.0.0.7 - - [25/Nov/2026:12:00:00 +0000] \"GET /a?b=1&c=<d> HTTP/1.1\" 200 12 \"http://ref/\" \"curl/8.5.0\"\n",
            AccessLogWriter.Line(Record("abc"), AccessLogFormat.Combined));
    }

    [Fact]
    public void Line_CombinedQuotesBackslashesAndNonAscii_EscapedAsNginxDoes()
    {
        var record = Record("x") with { Client = null, Referer = null, UserAgent = "say \"hi\" \\ é\t" };

        Assert.Equal(
            "- - - [25/Nov/2026:12:00:00 +0000] \"GET /a?b=1&c=<d> HTTP/1.1\" 200 12 \"-\" \"say \\x22hi\\x22 \\x5C \\xC3\\xA9\\x09\"\n",
            AccessLogWriter.Line(record, AccessLogFormat.Combined));
    }

    [Fact]
    public void Name_EveryOutcomeAndTermination_LowerCaseWithHyphens()
    {
        foreach (var o in Enum.GetValues<Outcome>()) Assert.Matches("^[a-z]+(-[a-z0-9]+)*$", AccessLogWriter.Name(o));
        Assert.Equal(["ok", "client", "backend", "timeout", "no-backend", "queue", "budget"],
            Enum.GetValues<Termination>().Select(AccessLogWriter.Name));
    }

    // ---- the stage -------------------------------------------------------------------------------

    [Fact]
    public async Task Write_TinyChannelNotRead_TheRestCountedAndWarnedOnce()
    {
        var path = PathOf("access.log");
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Json), capacity: 2);
        // Not started: nothing reads, so exactly the capacity fits, and the request path never waits.
        Gate.Switch(true);
        for (var i = 0; i < 5; i++) Gate.Write(Record($"r{i}"));
        Assert.Equal(3, Gate.Dropped);
        Assert.Equal(3, _metrics.AccessLogDroppedTotal);

        await writer.StartAsync(CancellationToken.None);
        _time.Advance(AccessLogWriter.CheckInterval);
        var warning = await _logs.WaitForAsync("Access log: 3 lines dropped", Deadline);
        await writer.StopAsync(CancellationToken.None);

        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal(["r0", "r1"], AccessLogFile.Read(path).Select(IdOf));
    }

    [Fact]
    public async Task StopAsync_RecordsQueued_EveryOneWrittenBeforeItEnds()
    {
        var path = PathOf("access.log");
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Combined), capacity: 500);
        await writer.StartAsync(CancellationToken.None);
        for (var i = 0; i < 500; i++) Gate.Write(Record($"r{i}"));

        await writer.StopAsync(CancellationToken.None);

        Assert.Equal(0, Gate.Dropped);
        Assert.Equal(500, AccessLogFile.Read(path).Length);
        Assert.True(writer.ExecuteTask!.IsCompletedSuccessfully);
        Assert.False(Gate.On);
    }

    [Fact]
    public async Task Dispose_WithoutAStop_TheLoopEndsAndWritesWhatIsQueued()
    {
        // The host disposes without stopping when it failed to start (a port in use).
        var path = PathOf("access.log");
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Json));
        await writer.StartAsync(CancellationToken.None);
        Gate.Write(Record("first"));
        await AccessLogFile.WaitForCountAsync(path, 1, Deadline); // the loop runs
        Gate.Write(Record("queued"));

        writer.Dispose();
        await writer.ExecuteTask!.WaitAsync(Deadline);

        Assert.Equal(["first", "queued"], AccessLogFile.Read(path).Select(IdOf));
        Assert.False(Gate.On);
    }

    [Fact]
    public async Task Check_FileRenamedAway_NewLinesInANewFileAtThePath()
    {
        var path = PathOf("access.log");
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Json));
        await writer.StartAsync(CancellationToken.None);
        Gate.Write(Record("before"));
        await AccessLogFile.WaitForCountAsync(path, 1, Deadline);

        File.Move(path, PathOf("access.log.1")); // logrotate's default: rename, then the writer must let go
        _time.Advance(AccessLogWriter.CheckInterval);
        await _logs.WaitForAsync($"Access log: {path} was moved away or replaced (log rotation); reopened it", Deadline);
        Gate.Write(Record("after"));
        await writer.StopAsync(CancellationToken.None);

        Assert.Equal(["before"], AccessLogFile.Read(PathOf("access.log.1")).Select(IdOf));
        Assert.Equal(["after"], AccessLogFile.Read(path).Select(IdOf));
    }

    [Fact]
    public async Task Check_FileReplacedByAnEmptyOne_ReopensTheNewOne()
    {
        var path = PathOf("access.log");
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Json));
        await writer.StartAsync(CancellationToken.None);
        Gate.Write(Record("before"));
        await AccessLogFile.WaitForCountAsync(path, 1, Deadline);

        File.Move(path, PathOf("access.log.1"));
        File.WriteAllText(path, ""); // logrotate's "create"
        _time.Advance(AccessLogWriter.CheckInterval);
        await _logs.WaitForAsync("reopened it", Deadline);
        Gate.Write(Record("after"));
        await writer.StopAsync(CancellationToken.None);

        Assert.Equal(["after"], AccessLogFile.Read(path).Select(IdOf));
    }

    [Fact]
    public async Task Check_FileTruncatedInPlace_GoesOnAtTheStart()
    {
        var path = PathOf("access.log");
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Json));
        await writer.StartAsync(CancellationToken.None);
        Gate.Write(Record("before"));
        await AccessLogFile.WaitForCountAsync(path, 1, Deadline);

        File.WriteAllText(path, ""); // logrotate's copytruncate: same file, emptied
        _time.Advance(AccessLogWriter.CheckInterval);
        await _logs.WaitForAsync($"Access log: {path} was truncated", Deadline);
        Gate.Write(Record("after"));
        await writer.StopAsync(CancellationToken.None);

        Assert.Equal(["after"], AccessLogFile.Read(path).Select(IdOf)); // no hole of zeros before it
        Assert.DoesNotContain(File.ReadAllBytes(path), b => b == 0);
    }

    [Fact]
    public async Task Settings_ReloadTurnsItOffThenOnElsewhere_GateAndFilesFollow()
    {
        var first = PathOf("a.log");
        var second = PathOf("b.log");
        var writer = Writer(new AccessLogConfig(first, AccessLogFormat.Json));
        await writer.StartAsync(CancellationToken.None);
        Gate.Write(Record("one"));

        _settings.Writer.TryWrite(AccessLogConfig.Off);
        await _logs.WaitForAsync("Access log: off", Deadline);
        Assert.False(Gate.On);
        _settings.Writer.TryWrite(new AccessLogConfig(second, AccessLogFormat.Combined));
        await _logs.WaitForAsync($"Access log: writing combined lines to {second}", Deadline);
        Assert.True(Gate.On);
        Gate.Write(Record("two"));
        await writer.StopAsync(CancellationToken.None);

        Assert.Equal(["one"], AccessLogFile.Read(first).Select(IdOf));
        Assert.StartsWith("10.0.0.7 - - [", Assert.Single(AccessLogFile.Read(second)));
    }

    [Fact]
    public async Task Start_PathCannotBeOpened_ErrorOnceOffThenOpenedWhenItCan()
    {
        var path = PathOf("busy");
        Directory.CreateDirectory(path); // a folder where the file should be: cannot be opened for writing
        var writer = Writer(new AccessLogConfig(path, AccessLogFormat.Json));

        await writer.StartAsync(CancellationToken.None);
        Assert.False(Gate.On); // no record is built while it cannot write
        Directory.Delete(path);
        _time.Advance(AccessLogWriter.CheckInterval);
        await _logs.WaitForAsync($"Access log: writing json lines to {path}", Deadline);

        Assert.True(Gate.On);
        Assert.Single(_logs.Lines, l => l.Message.StartsWith($"Access log: cannot open {path}", StringComparison.Ordinal));
    }
}
