using System.Threading.Channels;
using LoadBalancer.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Pipeline;

// Stage 4. Watches lb.json and tells the state task about every valid change (ConfigChanged) and the
// ticker about a new probe interval. It polls: reading a small file twice a second is cheap,
// and unlike a file-system watcher it sees every way a file gets replaced (in-place rewrite,
// rename over it, a Kubernetes ConfigMap's symlink swap) on every file system.
// On an https listen a changed tls or listenProtocols is loaded here, before anything applies,
// and a pair that loads goes to the CertificateWatcher on tlssettings. A file that cannot apply
// (it does not parse, or its pair cannot serve) is logged once, when it has failed the same way
// for a whole poll (so an editor's half-written file, or certificate files written one after the
// other, are not reported), told to the state task (ConfigRejected, for /status and the reload
// counter), and the running configuration stays; it is tried again every poll, so files that
// appear after lb.json names them are picked up. Handlers get the new hashKey and affinity cookie
// through RequestKeys. The next valid file is applied
// even when it means what runs already (the usual fix: the edit undone), so that the operator
// sees "Configuration reloaded" and /status's lastError clears. A changed accessLog goes to the
// access-log writer, which reopens its output; changed limits.* to the client listener (applyLimits).
public sealed class ConfigWatcher(
    string path, LbConfig running, StateClient state, ChannelWriter<TimeSpan> periods,
    TimeProvider time, ILogger<ConfigWatcher> log, ChannelWriter<AccessLogConfig>? accessLog = null,
    ChannelWriter<TlsSettings>? tlsSettings = null,
    Action<LimitsConfig>? applyLimits = null, Forwarding.RequestKeys? keys = null) : BackgroundService
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    byte[]? _seen;                              // the content last looked at
    string? _failing;                            // why _seen could not apply (it does not parse, or its tls pair does not load)
    bool _failLogged;                            // ... and that has been said
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
        var fresh = _seen is null || !bytes.AsSpan().SequenceEqual(_seen);
        if (!fresh && _failing is null) return; // nothing new since it applied
        if (fresh) (_seen, _failing, _failLogged) = (bytes, null, false);

        LbConfig next;
        TlsSettings? tls;
        var warnings = new List<string>();
        try
        {
            next = ConfigLoader.Parse(bytes, path, warnings);
            tls = TlsChange(next);
        }
        catch (ConfigException e)
        {
            // Said once, when it has failed the same way for a whole poll: not an editor's
            // half-written file, nor certificate files written one after the other. Tried again
            // every poll meanwhile, so files that appear after lb.json names them are picked up.
            if (_failing == e.Message && !_failLogged)
            {
                _failLogged = _rejected = true;
                Log.ReloadRejected(log, e.Message);
                await state.TellAsync(new ConfigRejected(e.Message)).ConfigureAwait(false);
            }
            _failing = e.Message;
            return;
        }
        _failing = null;
        // Once per new content, even when the change means nothing else: a misspelt key is
        // exactly the edit that otherwise seems to do nothing.
        if (fresh) foreach (var warning in warnings) Log.ConfigWarning(log, warning);
        if (SameContent(next, running) && !_rejected) return;

        if (next.Listen != running.Listen || next.Admin != running.Admin)
        {
            Log.ListenChangeNeedsRestart(log, running.Listen.ToString(), running.Admin.ToString());
            // The listener's own settings go with it: an http listen has no tls, an https one needs it.
            next = next with { Listen = running.Listen, Admin = running.Admin, ListenProtocols = running.ListenProtocols, Tls = running.Tls };
        }
        if (running.Tls is null && next.ListenProtocols != running.ListenProtocols)
        {
            // http: Kestrel fixes a cleartext listener's protocol when it binds (HTTP/1.1 or h2c;
            // without TLS's ALPN it cannot tell them apart on one port).
            Log.EdgeChangeNeedsRestart(log, ConfigLoader.ListenProtocolsText(running, quoted: true));
            next = next with { ListenProtocols = running.ListenProtocols };
        }
        // journal.*: the state task applies it (a new file begins with its checkpoint, so it replays alone).
        // The client listener's limits: the accept gate resizes, Kestrel's header timeout applies
        // to connections accepted from now on (open ones keep theirs).
        if (next.Limits != running.Limits) applyLimits?.Invoke(next.Limits);
        if (next.HealthCheck.Interval != running.HealthCheck.Interval) periods.TryWrite(next.HealthCheck.Interval);
        if (next.AccessLog != running.AccessLog) accessLog?.TryWrite(next.AccessLog);
        if (tls is not null) tlsSettings?.TryWrite(tls);
        keys?.Apply(next); // hashKey, affinity.cookie: what handlers read of each request
        running = next;
        _rejected = false;
        await state.TellAsync(new ConfigChanged(next)).ConfigureAwait(false);
    }

    // On an https listen whose tls or listenProtocols changed (and not the listen itself): the new
    // pair, loaded now. One that cannot serve throws, and the file is rejected like a bad one.
    TlsSettings? TlsChange(LbConfig next) =>
        running.Tls is not null && next.Listen == running.Listen && (next.Tls != running.Tls || next.ListenProtocols != running.ListenProtocols)
            ? new TlsSettings(next.Tls!, next.ListenProtocols, Hosting.CertificatePair.Load(next.Tls!, next.ListenProtocols, path))
            : null;

    static bool SameContent(LbConfig a, LbConfig b) =>
        a with { Backends = [] } == b with { Backends = [] } && a.Backends.SequenceEqual(b.Backends);

    byte[]? TryRead()
    {
        try { return BoundedFile.Read(path, BoundedFile.ConfigLimit); } // too large: Parse says so, once
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
