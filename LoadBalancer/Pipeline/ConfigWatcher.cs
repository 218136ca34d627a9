using System.Threading.Channels;
using LoadBalancer.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Pipeline;

// Stage 4. Watches lb.json and tells the state task about every valid change (ConfigChanged) and the
// ticker about a new probe interval. It polls: reading a small file twice a second is cheap,
// and unlike a file-system watcher it sees every way a file gets replaced (in-place rewrite,
// rename over it, a Kubernetes ConfigMap's symlink swap) on every file system.
// An invalid file is logged once (when it has stayed the same for two polls, so an editor's
// half-written file is not reported), told to the state task (ConfigRejected, for /status and
// the reload counter), and the running configuration stays. Handlers get the new hashKey and
// affinity cookie through RequestKeys. The next valid file is applied
// even when it means what runs already (the usual fix: the edit undone), so that the operator
// sees "Configuration reloaded" and /status's lastError clears. A changed accessLog goes to the
// access-log writer, which reopens its output; changed limits.* to the client listener (applyLimits).
public sealed class ConfigWatcher(
    string path, LbConfig running, StateClient state, ChannelWriter<TimeSpan> periods,
    TimeProvider time, ILogger<ConfigWatcher> log, ChannelWriter<AccessLogConfig>? accessLog = null,
    Action<LimitsConfig>? applyLimits = null, Forwarding.RequestKeys? keys = null) : BackgroundService
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    byte[]? _seen;                              // the content last looked at
    bool _invalidPending;                        // _seen does not parse; not logged yet
    bool _rejected;                              // a rejection was told since the last applied file

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _seen = TryRead();
        using var timer = new PeriodicTimer(PollInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                await PollAsync().ConfigureAwait(false);
        }
        // ChannelClosedException: a stop whose time ran out does not wait for this loop, so the
        // state task may have closed its channels while a change was on its way there.
        catch (Exception e) when (stoppingToken.IsCancellationRequested && e is OperationCanceledException or ChannelClosedException)
        {
        }
    }

    internal async Task PollAsync()
    {
        var bytes = TryRead();
        if (bytes is null) return; // mid-rename or deleted: keep what runs, look again next time
        if (_seen is not null && bytes.AsSpan().SequenceEqual(_seen))
        {
            if (_invalidPending) // unchanged for a whole poll: not an editor mid-write
            {
                _invalidPending = false;
                try { ConfigLoader.Parse(bytes, path); }
                catch (ConfigException e)
                {
                    Log.ReloadRejected(log, e.Message);
                    _rejected = true;
                    await state.TellAsync(new ConfigRejected(e.Message)).ConfigureAwait(false);
                }
            }
            return;
        }
        _seen = bytes;

        LbConfig next;
        var warnings = new List<string>();
        try
        {
            next = ConfigLoader.Parse(bytes, path, warnings);
        }
        catch (ConfigException)
        {
            _invalidPending = true;
            return;
        }
        _invalidPending = false;
        // Once per new content, even when the change means nothing else: a misspelt key is
        // exactly the edit that otherwise seems to do nothing.
        foreach (var warning in warnings) Log.ConfigWarning(log, warning);
        if (SameContent(next, running) && !_rejected) return;

        if (next.Listen != running.Listen || next.Admin != running.Admin)
        {
            Log.ListenChangeNeedsRestart(log, running.Listen.ToString(), running.Admin.ToString());
            next = next with { Listen = running.Listen, Admin = running.Admin };
        }
        if (next.ListenProtocols != running.ListenProtocols || next.Tls != running.Tls)
        {
            // The listener's protocols and TLS files are set when it starts (the files' contents are watched).
            Log.EdgeChangeNeedsRestart(log);
            next = next with { ListenProtocols = running.ListenProtocols, Tls = running.Tls };
        }
        // journal.*: the state task applies it (a new file begins with its checkpoint, so it replays alone).
        // The client listener's limits: the accept gate resizes, Kestrel's header timeout applies
        // to connections accepted from now on (open ones keep theirs).
        if (next.Limits != running.Limits) applyLimits?.Invoke(next.Limits);
        if (next.HealthCheck.Interval != running.HealthCheck.Interval) periods.TryWrite(next.HealthCheck.Interval);
        if (next.AccessLog != running.AccessLog) accessLog?.TryWrite(next.AccessLog);
        keys?.Apply(next); // hashKey, affinity.cookie: what handlers read of each request
        running = next;
        _rejected = false;
        await state.TellAsync(new ConfigChanged(next)).ConfigureAwait(false);
    }

    static bool SameContent(LbConfig a, LbConfig b) =>
        a with { Backends = [] } == b with { Backends = [] } && a.Backends.SequenceEqual(b.Backends);

    byte[]? TryRead()
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
