using System.Threading.Channels;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Hosting;

// A stage of its own: watches tls.certificate and tls.key and swaps a valid new pair into
// ServerCertificate, which Kestrel reads on every handshake, so new handshakes get it within a
// poll or two and open connections keep theirs. Go: for range ticker.C { if changed { swap } }.
// It polls, as ConfigWatcher does: reading two small files twice a second sees every way they get
// replaced (in-place rewrite, rename over them, a Kubernetes secret's symlink swap) on every
// file system. A pair that does not load is logged once, when it has stayed the same for a whole
// poll: cert-manager and certbot write the two files one after the other, so a new certificate
// beside the old key is a moment's state, not an error. The pair being served stays meanwhile.
// It reads no backend state and tells the state task nothing: the certificate is the listener's.
// A reload that changes tls (other files) or listenProtocols (the ALPN list) reaches it on
// tlssettings, from the config watcher, which has already loaded the new pair: it serves that
// pair and watches the new files from then on.
//   Go: for { select { case <-ticker.C: if changed { swap }; case s := <-tlssettings: watch s.files; swap(s.pair) } }
public sealed class CertificateWatcher(
    TlsConfig tls, HttpProtocols protocols, ServerCertificate target, TimeProvider time, ILogger<CertificateWatcher> log,
    ChannelReader<TlsSettings>? settings = null)
    : BackgroundService
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);
    static readonly Task<bool> Never = new TaskCompletionSource<bool>().Task; // Go: a nil channel

    // What was last looked at: the served pair's bytes to begin with.
    byte[] _certificate = target.Current.CertificateFile, _key = target.Current.KeyFile;
    bool _invalidPending; // the files as last seen do not load; not logged yet

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(PollInterval, time);
        try
        {
            // A two-case select, as the Ticker's: one pending wait on each, re-armed when it has finished.
            var tick = timer.WaitForNextTickAsync(stoppingToken).AsTask();
            var setting = settings?.WaitToReadAsync(stoppingToken).AsTask() ?? Never;
            while (true)
            {
                await Task.WhenAny(tick, setting).ConfigureAwait(false);
                if (setting.IsCompleted)
                {
                    var more = await setting.ConfigureAwait(false);
                    while (settings!.TryRead(out var s)) Apply(s);
                    setting = more ? settings.WaitToReadAsync(stoppingToken).AsTask() : Never;
                }
                if (tick.IsCompleted)
                {
                    if (!await tick.ConfigureAwait(false)) break;
                    Poll();
                    tick = timer.WaitForNextTickAsync(stoppingToken).AsTask();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A reload's new files and protocols, with the pair loaded from them: served now, watched from now on.</summary>
    internal void Apply(TlsSettings next)
    {
        (tls, protocols) = (next.Tls, next.Protocols);
        (_certificate, _key, _invalidPending) = (next.Pair.CertificateFile, next.Pair.KeyFile, false);
        target.Swap(next.Pair);
        Log.CertificateLoaded(log, next.Pair.Leaf.Subject, next.Pair.Leaf.SerialNumber, next.Pair.Leaf.NotAfter.ToUniversalTime());
    }

    internal void Poll()
    {
        byte[] certificate, key;
        try
        {
            certificate = CertificatePair.Read(tls.Certificate, "tls.certificate");
            key = CertificatePair.Read(tls.Key, "tls.key");
        }
        catch (ConfigException)
        {
            return; // mid-rename or deleted: keep serving, look again next time
        }
        var changed = !certificate.AsSpan().SequenceEqual(_certificate) || !key.AsSpan().SequenceEqual(_key);
        if (!changed && !_invalidPending) return;
        (_certificate, _key) = (certificate, key);

        CertificatePair next;
        try
        {
            next = CertificatePair.FromPem(certificate, key, tls, protocols);
        }
        catch (ConfigException e)
        {
            // Changed: give the writer one poll to finish. Unchanged since: it is what is there.
            if (changed) _invalidPending = true;
            else
            {
                _invalidPending = false;
                Log.CertificateRejected(log, e.Message, target.Current.Leaf.SerialNumber);
            }
            return;
        }
        _invalidPending = false;
        target.Swap(next);
        Log.CertificateLoaded(log, next.Leaf.Subject, next.Leaf.SerialNumber, next.Leaf.NotAfter.ToUniversalTime());
    }
}
