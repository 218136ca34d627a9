using System.Runtime.InteropServices;
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
    readonly Dictionary<string, BackendEntry> _byToken = []; // affinity token -> entry (affinity on)

    void SetAffinityTokens()
    {
        _affinitySecret = _config.Affinity is { } a ? a.Secret is null ? _drawSecret() : Affinity.Secret(a.Secret) : null;
        foreach (var e in _entries) e.AffinityToken = Token(e);
    }

    string? Token(BackendEntry e) => _affinitySecret is null ? null : Affinity.Token(_affinitySecret, e.Route.Identity);

    // After a change of backends or of the secret.
    void IndexTokens()
    {
        _byToken.Clear();
        foreach (var e in _entries)
            if (e.AffinityToken is { } token) _byToken[token] = e;
    }

    // The candidate the cookie names: one lookup, then a constant-time comparison. A forged value
    // finds nothing (or, a hash collision away, a token it does not equal): the time taken says
    // nothing about any token's bytes, and does not grow with the number of backends.
    BackendEntry? Sticky(string? cookie)
    {
        if (cookie is null || _affinitySecret is null) return null;
        if (ReferencePicks) return StickyByScan(CollectionsMarshal.AsSpan(_eligible), cookie);
        return _byToken.TryGetValue(cookie, out var e) && e.IndexedCandidate && Affinity.Matches(e.AffinityToken!, cookie) ? e : null;
    }

    // As before the index: every candidate's token compared, whatever matched first.
    static BackendEntry? StickyByScan(ReadOnlySpan<BackendEntry> eligible, string cookie)
    {
        BackendEntry? found = null;
        foreach (var e in eligible)
            if (e.AffinityToken is { } token && Affinity.Matches(token, cookie)) found = e;
        return found;
    }
}
