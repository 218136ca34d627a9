using System.Net;
using System.Threading.Channels;
using DnsClient;
using DnsClient.Protocol;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Discovery;

// Stage: DNS discovery, the ticker pattern a third time. Its own PeriodicTimer ticks every Floor
// (1 s); each tick it asks the state task which backends have discover "dns" (DiscoveryPlanRequest,
// so a reload that adds one is seen within a second), resolves those that are due (A and AAAA,
// with DnsClient, from discovery.nameservers or the system's) and tells the state task each
// answer (MembershipChanged). A host is due again after its records' smallest TTL, clamped
// between Floor and discovery.interval (YARP re-resolves every 5 minutes whatever the TTL,
// yarp#193). A failed or empty lookup is told as such: the state task keeps the last addresses,
// marked stale. An answer is capped at MaxAddresses (sorted, so every balancer keeps the same
// ones), logged. The first round runs in StartAsync, before the listeners open: backends are
// resolved at startup. It never reads backend state; it only asks and tells.
//   Go: for range ticker.C { plan := ask(); for _, b := range due(plan) { events <- resolve(b) } }
public sealed class DnsResolver(StateClient state, TimeProvider time, ILogger<DnsResolver> log,
    Func<DiscoveryConfig, IDnsQuery>? dnsClient = null) : BackgroundService
{
    public static readonly TimeSpan Floor = TimeSpan.FromSeconds(1);
    public const int MaxAddresses = 64;

    readonly Func<DiscoveryConfig, IDnsQuery> _dnsClient = dnsClient ?? Client;
    readonly Dictionary<string, DateTimeOffset> _due = [];   // backend Key -> next lookup
    readonly Dictionary<string, string> _failing = [];       // backend Key -> the error last logged
    readonly Dictionary<string, int> _capped = [];           // backend Key -> answer size last logged as capped
    DiscoveryConfig? _settings;
    IDnsQuery? _dns;

    static IDnsQuery Client(DiscoveryConfig settings)
    {
        var servers = settings.NameserverEndPoints();
        var options = servers.Length == 0 ? new LookupClientOptions() : new LookupClientOptions(servers);
        options.UseCache = false; // TTLs are honoured here, per host
        options.Timeout = TimeSpan.FromSeconds(1);
        options.Retries = 1;
        options.UseTcpFallback = true; // a big answer comes truncated over UDP
        return new LookupClient(options);
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, limit.Token);
        try
        {
            await RoundAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Slow DNS at startup: the loop goes on resolving; listening does not wait longer.
        }
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Floor, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    await RoundAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not (OperationCanceledException or ChannelClosedException))
                {
                    Log.DnsRoundFailed(log, e); // a bug, logged; the next tick tries again
                }
            }
        }
        catch (Exception e) when (stoppingToken.IsCancellationRequested && e is OperationCanceledException or ChannelClosedException)
        {
        }
    }

    /// <summary>One tick: ask for the plan, resolve what is due, tell each answer.</summary>
    internal async Task RoundAsync(CancellationToken cancellationToken)
    {
        var plan = await state.DiscoveryPlanAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (plan.Settings != _settings || _dns is null)
        {
            _settings = plan.Settings;
            _dns = _dnsClient(plan.Settings);
            _due.Clear(); // new nameservers or interval: look again now
        }
        foreach (var key in _due.Keys.ToArray())
            if (!plan.Targets.Any(b => b.Key == key)) _due.Remove(key);
        var now = time.GetUtcNow();
        var due = plan.Targets.Where(b => !_due.TryGetValue(b.Key, out var at) || at <= now).ToArray();
        if (due.Length == 0) return;
        var answers = await Task.WhenAll(due.Select(b => ResolveAsync(_dns, b, plan.Settings.Interval, cancellationToken))).ConfigureAwait(false);
        foreach (var m in answers) await state.TellAsync(m).ConfigureAwait(false);
    }

    async Task<MembershipChanged> ResolveAsync(IDnsQuery dns, BackendConfig backend, TimeSpan interval, CancellationToken cancellationToken)
    {
        var host = backend.Uri.IdnHost;
        var port = backend.Uri.Port;
        string? error;
        var addresses = new SortedSet<string>(StringComparer.Ordinal);
        var ttl = interval;
        var records = 0;
        try
        {
            var answers = await Task.WhenAll(
                dns.QueryAsync(host, QueryType.A, QueryClass.IN, cancellationToken),
                dns.QueryAsync(host, QueryType.AAAA, QueryClass.IN, cancellationToken)).ConfigureAwait(false);
            foreach (var answer in answers)
            {
                foreach (var record in answer.Answers)
                {
                    IPAddress? ip = record switch { ARecord a => a.Address, AaaaRecord a => a.Address, _ => null };
                    if (ip is null) continue;
                    records++;
                    addresses.Add(new IPEndPoint(ip, port).ToString());
                    if (TimeSpan.FromSeconds(record.TimeToLive) < ttl) ttl = TimeSpan.FromSeconds(record.TimeToLive);
                }
            }
            error = addresses.Count > 0 ? null
                : answers.FirstOrDefault(a => a.HasError)?.ErrorMessage is { } message ? message
                : "no A or AAAA records";
        }
        catch (DnsResponseException e)
        {
            error = e.Message;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = "timed out";
        }
        catch (System.Net.Sockets.SocketException e)
        {
            error = e.Message;
        }

        var next = error is null ? Clamp(ttl, interval) : interval;
        _due[backend.Key] = time.GetUtcNow() + next;
        if (error is not null)
        {
            if (_failing.GetValueOrDefault(backend.Key) != error) Log.DnsFailed(log, host, error);
            _failing[backend.Key] = error;
            return new MembershipChanged(backend.Key, null, error);
        }
        if (_failing.Remove(backend.Key)) Log.DnsRecovered(log, host, addresses.Count);
        if (addresses.Count > MaxAddresses)
        {
            if (_capped.GetValueOrDefault(backend.Key) != addresses.Count) Log.DnsCapped(log, host, addresses.Count, MaxAddresses);
            _capped[backend.Key] = addresses.Count;
        }
        else
        {
            _capped.Remove(backend.Key);
        }
        Log.DnsResolved(log, host, Math.Min(addresses.Count, MaxAddresses), next.TotalSeconds);
        return new MembershipChanged(backend.Key, addresses.Take(MaxAddresses).ToArray(), null);
    }

    /// <summary>A record's TTL, but never below Floor (a TTL of 0 would be a lookup storm) nor above the interval.</summary>
    public static TimeSpan Clamp(TimeSpan ttl, TimeSpan interval) =>
        ttl < Floor ? (Floor < interval ? Floor : interval) : ttl > interval ? interval : ttl;
}
