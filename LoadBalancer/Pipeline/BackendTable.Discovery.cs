using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The discovery rule of BackendTable (see BackendTable.cs): a backend with discover "dns" is a
// template; each address the DnsResolver found for it is one backend (its URL as in lb.json,
// its identity the URL plus "ip:port"). A MembershipChanged is reconciled exactly as a reload:
// addresses that stay keep their state, new ones start unknown, vanished ones drain and their
// pool is closed when the last request ends. A failed or empty lookup keeps the last addresses,
// marked stale (with the error) until a lookup succeeds again.
public sealed partial class BackendTable
{
    readonly Dictionary<string, Discovered> _discovered = []; // backend Key -> its last lookup

    sealed record Discovered(string[] Addresses, string? Error);

    public void Apply(MembershipChanged m)
    {
        var template = _config.Backends.FirstOrDefault(b => b.Key == m.Backend && b.Discover);
        if (template is null) return; // a reload removed it while the lookup was on its way
        var last = _discovered.GetValueOrDefault(m.Backend);
        if (m.Addresses is null)
        {
            _discovered[m.Backend] = new Discovered(last?.Addresses ?? [], m.Error ?? "no addresses");
            return; // the last addresses stay
        }
        _discovered[m.Backend] = new Discovered(m.Addresses, null);
        if (last is not null && last.Addresses.AsSpan().SequenceEqual(m.Addresses)) return;
        SetBackends(Expand(_config.Backends),
            [new Evidence(Evidence.Dns, _time.GetUtcNow(), $"{m.Backend}: {(m.Addresses.Length == 0 ? "no addresses" : string.Join(", ", m.Addresses))}")]);
        Dispatch(); // new addresses: waiters may go now
    }

    /// <summary>The backends of lb.json with each discovered one replaced by its addresses (none
    /// until its first lookup answers).</summary>
    List<BackendConfig> Expand(IReadOnlyList<BackendConfig> backends)
    {
        var list = new List<BackendConfig>(backends.Count);
        foreach (var b in backends)
        {
            if (!b.Discover) list.Add(b);
            else if (_discovered.GetValueOrDefault(b.Key) is { } found)
                foreach (var address in found.Addresses) list.Add(b with { Address = address });
        }
        return list;
    }

    void ForgetDiscovered(LbConfig config)
    {
        foreach (var key in _discovered.Keys.ToArray())
            if (!config.Backends.Any(b => b.Key == key && b.Discover)) _discovered.Remove(key);
    }

    DiscoveryStatus? DiscoveryOf(BackendEntry e) =>
        e.Route.Address is null ? null
        : _discovered.GetValueOrDefault(e.Route.Key) is { Error: { } error } ? new DiscoveryStatus(true, error)
        : new DiscoveryStatus(false, null);

    public DiscoveryPlan DiscoveryPlan() => new([.. _config.Backends.Where(b => b.Discover)], _config.Discovery);
}
