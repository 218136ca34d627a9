using LoadBalancer.Balancing;

namespace LoadBalancer.Pipeline;

// The affinity rule of BackendTable (see BackendTable.cs): with affinity.cookie set, every
// backend has a token (Affinity.Token: an HMAC of its identity under affinity.secret), computed
// when the backend is added or the secret changes, never per request. A pick whose request
// carries a cookie equal to an eligible backend's token (compared in constant time) goes there;
// anything else (no cookie, a forged or foreign value, a backend now ineligible or already
// tried) is picked by the policy and told to set a new cookie.
public sealed partial class BackendTable
{
    byte[]? _affinitySecret; // null: affinity off
    readonly Func<byte[]> _drawSecret;

    void SetAffinityTokens()
    {
        _affinitySecret = _config.Affinity is { } a ? a.Secret is null ? _drawSecret() : Affinity.Secret(a.Secret) : null;
        foreach (var e in _entries) e.AffinityToken = Token(e);
    }

    string? Token(BackendEntry e) => _affinitySecret is null ? null : Affinity.Token(_affinitySecret, e.Route.Identity);

    // Scans every eligible backend, whatever matched first: the time taken does not say which.
    BackendEntry? Sticky(ReadOnlySpan<BackendEntry> eligible, string? cookie)
    {
        if (cookie is null || _affinitySecret is null) return null;
        BackendEntry? found = null;
        foreach (var e in eligible)
            if (e.AffinityToken is { } token && Affinity.Matches(token, cookie)) found = e;
        return found;
    }
}
