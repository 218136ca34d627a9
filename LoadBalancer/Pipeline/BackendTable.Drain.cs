using LoadBalancer.Configuration;

namespace LoadBalancer.Pipeline;

// The operator's drain rule of BackendTable (see BackendTable.cs): POST /backends/drain takes a
// backend out of picks (state draining) while its in-flight requests finish; when none is left a
// "drained" event follows (the change's To). It stays in the table, probed as before, until
// POST /backends/undrain puts it back in its health state. A reload that keeps the backend keeps
// the drain (it is the same entry); a reload that removes it drains it away as any removed backend.
public sealed partial class BackendTable
{
    /// <summary>Drains (drain true) or undrains the backend whose URL is url (as in lb.json, or any
    /// spelling that normalises to the same). False when no backend has that URL.</summary>
    public bool Drain(string url, bool drain)
    {
        var e = Find(url);
        if (e is null) return false;
        Evidence[] call = [new Evidence(Evidence.Operator, _time.GetUtcNow(), drain ? "POST /backends/drain" : "POST /backends/undrain")];
        if (drain && !e.OperatorDrain)
        {
            e.DrainReported = false;
            Change(e, () => e.OperatorDrain = true, new StateReason.OperatorDrain(e.InFlight), call);
            if (e.InFlight == 0 && !e.Draining) DrainDone(e);
        }
        else if (!drain && e.OperatorDrain)
        {
            Change(e, () => e.OperatorDrain = false, new StateReason.OperatorUndrain(), call);
        }
        Dispatch(); // undrained: waiters may go now; drained: waiters that had only it get their answer
        return true;
    }

    // The drain's last in-flight request has ended: once per drain.
    void DrainDone(BackendEntry e)
    {
        if (e.DrainReported) return;
        e.DrainReported = true;
        Report(e, new StateChange(e.Route, e.State, new StateReason.DrainComplete()), e.State,
            [new Evidence(Evidence.Request, _time.GetUtcNow(), "no request left in flight")]);
    }

    BackendEntry? Find(string url)
    {
        foreach (var e in _entries)
            if (e.Route.Url == url) return e;
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")) return null;
        var key = ConfigLoader.Normalise(uri);
        foreach (var e in _entries)
            if (e.Route.Key == key) return e;
        return null;
    }
}
