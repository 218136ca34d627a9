using System.Buffers;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading.Channels;
using LoadBalancer.Configuration;
using LoadBalancer.Forwarding;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Pipeline;

// Stage 6, the access log: the pipeline's pattern once more, a consumer at the end of a bounded
// channel with a task of its own. Reads records (one per client request; handlers only TryWrite
// and count what does not fit, see Forwarding/AccessLog.cs), formats each as one line, json or
// nginx combined, into its own buffer, and writes the buffer to stdout or the file when it passes
// 32 KiB and whenever records is empty: a quiet log is never behind, and every write ends on a
// line. Also reads settings (accessLog after a reload: close, open the new output) and, once a
// second, checks that the path still names the open file (logrotate renamed it away: reopen, so
// new lines are in a new file at the path within 2 s) and that nobody truncated it (copytruncate:
// go on at its new end). It owns the output; nothing else touches it. It stops after Kestrel:
// completes records, writes what is queued, closes the file.
//   Go: for { select { case r := <-records: write(r); case c := <-settings: reopen(c); case <-check.C: rotated() } }
public sealed class AccessLogWriter : BackgroundService
{
    public static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);
    static readonly TimeSpan DropWarningEvery = TimeSpan.FromMinutes(1);
    const int WriteAt = 32 * 1024;
    static readonly Task<bool> Never = new TaskCompletionSource<bool>().Task; // Go: a nil channel

    readonly ChannelReader<AccessRecord> _records;
    readonly ChannelReader<AccessLogConfig> _settings;
    readonly AccessLog _gate;
    readonly TimeProvider _time;
    readonly ILogger _log;
    readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    readonly Utf8JsonWriter _json;
    readonly AccessLogConfig _initial;
    readonly PeriodicTimer _timer;
    readonly CancellationToken _announceAfter;

    AccessLogConfig _config = AccessLogConfig.Off; // what lb.json asks for
    Stream? _out;                                  // what is open; null: off, or it cannot be opened
    string? _openedAs;                             // Linux: the open file's path as /proc/self/fd names it
    string? _problem;                              // the last open or write error logged, to log each once
    long _droppedWarned;
    DateTimeOffset _droppedWarnedAt = DateTimeOffset.MinValue;

    public AccessLogWriter(ChannelReader<AccessRecord> records, ChannelReader<AccessLogConfig> settings, AccessLogConfig initial,
        AccessLog gate, TimeProvider time, ILogger<AccessLogWriter> log, CancellationToken announceAfter = default)
    {
        _announceAfter = announceAfter;
        _records = records;
        _settings = settings;
        _gate = gate;
        _time = time;
        _log = log;
        _json = new Utf8JsonWriter(_buffer, JsonOptions);
        _initial = initial;
        _timer = new PeriodicTimer(CheckInterval, time); // made here: a test's clock may move before the loop runs
    }

    // For log lines, not HTML: '<', '&', '+' and non-ASCII stay readable; control characters and
    // quotes are still escaped.
    static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // Opened before Kestrel starts (this runs in the host's start, in order): the first request is
    // logged. Said once the listeners are bound (announceAfter: ApplicationStarted), so that a
    // balancer that cannot listen says only that.
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (Apply(_initial, announce: false) && _config.On)
        {
            var (format, where) = (AccessLogConfig.Name(_config.Format), Where(_config));
            if (_announceAfter.CanBeCanceled) _announceAfter.Register(() => Log.AccessLogOpened(_log, format, where));
            else Log.AccessLogOpened(_log, format, where);
        }
        return base.StartAsync(cancellationToken);
    }

    // Waits without the stopping token: records still come while Kestrel drains. Completing
    // records (StopAsync) ends the loop.
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(RunAsync, CancellationToken.None);

    async Task RunAsync()
    {
        // A three-case select: one pending wait on each, re-armed only when it has finished.
        var record = _records.WaitToReadAsync().AsTask();
        var setting = _settings.WaitToReadAsync().AsTask();
        var check = _timer.WaitForNextTickAsync().AsTask();
        try
        {
            while (true)
            {
                await Task.WhenAny(record, setting, check).ConfigureAwait(false);
                // Records first: the ones made before a reload or a rotation go where they were meant to.
                if (record.IsCompleted)
                {
                    if (!await record.ConfigureAwait(false)) break; // completed and drained: stop
                    WriteQueued();
                    record = _records.WaitToReadAsync().AsTask();
                }
                if (setting.IsCompleted)
                {
                    var more = await setting.ConfigureAwait(false);
                    AccessLogConfig? latest = null;
                    while (_settings.TryRead(out var c)) { latest = c; _settingsRead++; }
                    if (latest is not null) Apply(latest);
                    setting = more ? _settings.WaitToReadAsync().AsTask() : Never;
                }
                if (check.IsCompleted)
                {
                    var ticking = await check.ConfigureAwait(false);
                    if (ticking) Check();
                    check = ticking ? _timer.WaitForNextTickAsync().AsTask() : Never; // false: the timer is disposed
                }
            }
        }
        finally
        {
            _timer.Dispose();
            CloseOutput();
            _json.Dispose();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Kestrel has stopped (it stops first): no handler is left to write. Close from the
        // sender's side, as in Go; the loop writes what is queued and ends.
        _gate.Switch(false);
        _gate.Complete();
        if (ExecuteTask is { } running)
        {
            try
            {
                await running.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The shutdown timeout is spent: stop waiting; the loop finishes on its own.
            }
        }
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    void WriteQueued()
    {
        while (_records.TryRead(out var r))
        {
            _recordsRead++; if (_out is null) continue; // turned off (or unopenable) after the record was made
            var lineStart = _buffer.WrittenCount;
            try
            {
                Format(r, _config.Format, _buffer, _json);
            }
            catch (Exception e) // a bug: this line is lost, the log goes on
            {
                Log.AccessLogFormatFailed(_log, r.RequestId, e);
                WriteOut(lineStart);
                continue;
            }
            if (_buffer.WrittenCount >= WriteAt) WriteOut();
        }
        WriteOut(); // records is empty: nothing waits in the buffer
    }

    /// <summary>Writes the buffer (its first <paramref name="upTo"/> bytes) and empties it.</summary>
    void WriteOut(int upTo = int.MaxValue)
    {
        var bytes = _buffer.WrittenSpan;
        if (upTo < bytes.Length) bytes = bytes[..upTo];
        if (bytes.Length > 0 && _out is not null)
        {
            try
            {
                _out.Write(bytes);
                _problem = null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                if (e.Message != _problem) Log.AccessLogWriteFailed(_log, Where(_config), e.Message);
                _problem = e.Message;
            }
        }
        _buffer.ResetWrittenCount();
    }

    /// <summary>Closes what is open and opens what config asks for. False when it cannot be opened.</summary>
    bool Apply(AccessLogConfig config, bool announce = true)
    {
        if (config == _config) return true;
        var wasOn = _config.On;
        CloseOutput();
        _config = config;
        _problem = null;
        if (!config.On)
        {
            _gate.Switch(false);
            if (wasOn) Log.AccessLogOff(_log);
            return true;
        }
        if (!TryOpen()) return false;
        if (announce) Log.AccessLogOpened(_log, AccessLogConfig.Name(config.Format), Where(config));
        return true;
    }

    // Once a second: warn about drops; open a file that could not be opened; reopen a moved one.
    void Check()
    {
        WarnDrops();
        if (!_config.On || _config.ToStdout) return;
        if (_out is not FileStream file)
        {
            if (TryOpen()) Log.AccessLogOpened(_log, AccessLogConfig.Name(_config.Format), Where(_config));
            return;
        }
        if (!Moved(file)) return;
        CloseOutput();
        if (TryOpen()) Log.AccessLogReopened(_log, _config.Path!);
    }

    // Linux names an open file's current path in /proc/self/fd: a rename changes it, a delete
    // adds " (deleted)". Elsewhere a file at the path shorter than what we wrote is a new one (or
    // ours truncated); reopening is right for both.
    bool Moved(FileStream file)
    {
        try
        {
            if (!File.Exists(_config.Path)) return true;
            if (_openedAs is null) return new FileInfo(_config.Path!).Length < file.Position;
            if (Link(file) != _openedAs) return true;
            if (file.Length < file.Position) // copytruncate: go on at its new end, or the next line leaves a hole
            {
                file.Seek(0, SeekOrigin.End);
                Log.AccessLogTruncated(_log, _config.Path!);
            }
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    bool TryOpen()
    {
        try
        {
            if (_config.ToStdout)
            {
                _out = Console.OpenStandardOutput();
            }
            else
            {
                var file = new FileStream(_config.Path!, new FileStreamOptions
                {
                    Mode = FileMode.OpenOrCreate,
                    Access = FileAccess.Write,
                    Share = FileShare.ReadWrite | FileShare.Delete,
                    BufferSize = 0, // the buffer is ours: one write per batch
                });
                file.Seek(0, SeekOrigin.End);
                _out = file;
                _openedAs = Link(file);
            }
            _problem = null;
            _gate.Switch(true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (e.Message != _problem) Log.AccessLogCannotOpen(_log, _config.Path!, e.Message);
            _problem = e.Message;
            _gate.Switch(false);
            return false;
        }
    }

    void CloseOutput()
    {
        WriteOut();
        try
        {
            _out?.Dispose();
        }
        catch (IOException)
        {
        }
        _out = null;
        _openedAs = null;
    }

    static string? Link(FileStream file)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return File.ResolveLinkTarget($"/proc/self/fd/{file.SafeFileHandle.DangerousGetHandle()}", returnFinalTarget: false)?.FullName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    void WarnDrops()
    {
        var dropped = _gate.Dropped;
        var now = _time.GetUtcNow();
        if (dropped == _droppedWarned || now - _droppedWarnedAt < DropWarningEvery) return;
        Log.AccessLogDropped(_log, dropped - _droppedWarned, dropped);
        _droppedWarned = dropped;
        _droppedWarnedAt = now;
    }

    static string Where(AccessLogConfig c) => c.ToStdout ? "stdout" : c.Path!;

    // ---- formatting: pure, record in, one line of bytes out -------------------------------------

    /// <summary>One record as one line (with its newline), for tests and docs.</summary>
    public static string Line(AccessRecord record, AccessLogFormat format)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using var json = new Utf8JsonWriter(buffer, JsonOptions);
        Format(record, format, buffer, json);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    static void Format(AccessRecord r, AccessLogFormat format, ArrayBufferWriter<byte> buffer, Utf8JsonWriter json)
    {
        if (format == AccessLogFormat.Combined)
        {
            Combined(r, buffer);
        }
        else
        {
            json.Reset(buffer);
            Json(r, json);
            json.Flush();
        }
        buffer.Write("\n"u8);
    }

    static readonly JsonEncodedText TimeName = JsonEncodedText.Encode("time"), ClientName = JsonEncodedText.Encode("client"),
        MethodName = JsonEncodedText.Encode("method"), TargetName = JsonEncodedText.Encode("target"),
        ProtocolName = JsonEncodedText.Encode("protocol"), StatusName = JsonEncodedText.Encode("status"),
        BytesInName = JsonEncodedText.Encode("bytesIn"), BytesOutName = JsonEncodedText.Encode("bytesOut"),
        DurationName = JsonEncodedText.Encode("durationMs"), RequestIdName = JsonEncodedText.Encode("requestId"),
        BackendName = JsonEncodedText.Encode("backend"), AttemptsName = JsonEncodedText.Encode("attempts"),
        OutcomeName = JsonEncodedText.Encode("outcome"), QueueName = JsonEncodedText.Encode("queueMs"),
        TerminationName = JsonEncodedText.Encode("termination"), RefererName = JsonEncodedText.Encode("referer"),
        UserAgentName = JsonEncodedText.Encode("userAgent");

    // {"time":"2026-11-25T12:00:00.123Z","client":"10.0.0.7","method":"GET",...} in the contract's order.
    static void Json(AccessRecord r, Utf8JsonWriter w)
    {
        Span<char> chars = stackalloc char[64];
        w.WriteStartObject();
        r.Time.UtcDateTime.TryFormat(chars, out var n, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        w.WriteString(TimeName, chars[..n]);
        if (Client(r.Client) is { } client && client.TryFormat(chars, out n)) w.WriteString(ClientName, chars[..n]);
        else w.WriteNull(ClientName);
        w.WriteString(MethodName, r.Method);
        w.WriteString(TargetName, r.Target);
        w.WriteString(ProtocolName, r.Protocol);
        w.WriteNumber(StatusName, r.Status);
        w.WriteNumber(BytesInName, r.BytesIn);
        w.WriteNumber(BytesOutName, r.BytesOut);
        w.WriteNumber(DurationName, Ms(r.DurationMs));
        w.WriteString(RequestIdName, r.RequestId);
        w.WriteString(BackendName, r.Backend); // null writes null
        w.WriteStartArray(AttemptsName);
        foreach (var a in r.Attempts)
        {
            w.WriteStartObject();
            w.WriteString(BackendName, a.Backend);
            w.WriteString(OutcomeName, Name(a.Outcome));
            w.WriteNumber(DurationName, Ms(a.DurationMs));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber(QueueName, Ms(r.QueueMs));
        w.WriteString(TerminationName, Name(r.Termination));
        w.WriteString(RefererName, r.Referer);
        w.WriteString(UserAgentName, r.UserAgent);
        w.WriteEndObject();
    }

    static double Ms(double ms) => Math.Round(ms, 3);

    static IPAddress? Client(IPAddress? a) => a is { IsIPv4MappedToIPv6: true } ? a.MapToIPv4() : a;

    // nginx's combined format, its time in UTC:
    //   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
    // Quoted values escaped as nginx does: '"', '\', and bytes below 32 or above 126 as \xXX.
    static void Combined(AccessRecord r, ArrayBufferWriter<byte> b)
    {
        Span<char> chars = stackalloc char[64];
        if (Client(r.Client) is { } client && client.TryFormat(chars, out var n)) Ascii(b, chars[..n]);
        else b.Write("-"u8);
        b.Write(" - - ["u8);
        r.Time.UtcDateTime.TryFormat(chars, out n, "dd/MMM/yyyy:HH:mm:ss", CultureInfo.InvariantCulture);
        Ascii(b, chars[..n]);
        b.Write(" +0000] \""u8);
        Escaped(b, r.Method);
        b.Write(" "u8);
        Escaped(b, r.Target);
        b.Write(" "u8);
        Escaped(b, r.Protocol);
        b.Write("\" "u8);
        Number(b, r.Status);
        b.Write(" "u8);
        Number(b, r.BytesOut);
        b.Write(" \""u8);
        Escaped(b, r.Referer is { Length: > 0 } referer ? referer : "-");
        b.Write("\" \""u8);
        Escaped(b, r.UserAgent is { Length: > 0 } agent ? agent : "-");
        b.Write("\""u8);
    }

    static void Ascii(ArrayBufferWriter<byte> b, ReadOnlySpan<char> text)
    {
        var span = b.GetSpan(text.Length);
        var n = Encoding.ASCII.GetBytes(text, span);
        b.Advance(n);
    }

    static void Number(ArrayBufferWriter<byte> b, long value)
    {
        var span = b.GetSpan(20);
        value.TryFormat(span, out var n, default, CultureInfo.InvariantCulture);
        b.Advance(n);
    }

    static void Escaped(ArrayBufferWriter<byte> b, string text)
    {
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.Value is >= 0x20 and <= 0x7E and not '"' and not '\\')
            {
                b.GetSpan(1)[0] = (byte)rune.Value;
                b.Advance(1);
                continue;
            }
            var n = rune.EncodeToUtf8(utf8);
            foreach (var x in utf8[..n])
            {
                var span = b.GetSpan(4);
                span[0] = (byte)'\\';
                span[1] = (byte)'x';
                span[2] = Hex[x >> 4];
                span[3] = Hex[x & 0xF];
                b.Advance(4);
            }
        }
    }

    static ReadOnlySpan<byte> Hex => "0123456789ABCDEF"u8;

    /// <summary>The outcome of an attempt as the access log names it. Exhaustive: a new Outcome
    /// does not compile until it has a name here.</summary>
#pragma warning disable CS8524 // only values outside the enum fall through
    public static string Name(Outcome o) => o switch
    {
        Outcome.Response => "response",
        Outcome.BadGatewayStatus => "bad-gateway-status",
        Outcome.ConnectRefused => "connect-refused",
        Outcome.ConnectTimeout => "connect-timeout",
        Outcome.TlsFailure => "tls-failure",
        Outcome.ResponseTimeout => "response-timeout",
        Outcome.ResetBeforeHeaders => "reset-before-headers",
        Outcome.ResetAfterHeaders => "reset-after-headers",
        Outcome.ClientAbort => "client-abort",
        Outcome.ClientStall => "client-stall",
        Outcome.StreamIdle => "stream-idle",
        Outcome.TunnelIdle => "tunnel-idle",
        Outcome.NotForwarded => "not-forwarded",
    };

    public static string Name(Termination t) => t switch
    {
        Termination.Ok => "ok",
        Termination.Client => "client",
        Termination.Backend => "backend",
        Termination.Timeout => "timeout",
        Termination.NoBackend => "no-backend",
        Termination.Queue => "queue",
        Termination.Budget => "budget",
    };
#pragma warning restore CS8524


    // Without a stop (the host failed to start: a port in use), the loop still ends and closes the file.
    public override void Dispose()
    {
        _gate.Switch(false);
        _gate.Complete();
        _timer.Dispose();
        base.Dispose();
    }

    long _recordsRead, _settingsRead; // this loop alone writes them; the dashboard reads them

    /// <summary>Records taken from accesslog since startup.</summary>
    public long RecordsRead => Volatile.Read(ref _recordsRead);

    /// <summary>Settings taken from accesslogsettings since startup.</summary>
    public long SettingsRead => Volatile.Read(ref _settingsRead);
}
