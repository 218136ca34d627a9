using System.Globalization;
using System.Text;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// nginx's smooth weighted round-robin (ngx_http_upstream_get_peer): every pick adds each
// candidate's weight to its running weight, takes the largest, and subtracts the total from it.
// Weights 5,1,1 give a a b a c a a. Only eligible backends take part, so with one of three
// equal backends down the other two alternate: the tutorial's "all to the first healthy one"
// cannot happen. A pick does this through SmoothRoundRobin, which keeps the same sequence
// without visiting every backend.
public sealed class RoundRobinPolicy : IBalancingPolicy
{
    public BackendEntry Choose(BackendIndex candidates, PickContext? context) => candidates.RoundRobin.Next(candidates.Warming);

    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
    {
        BackendEntry? best = null;
        long total = 0;
        foreach (var e in eligible)
        {
            e.CurrentWeight += e.EffectiveWeight; // Weight, scaled; less while slow start ramps it up
            total += e.EffectiveWeight;
            if (best is null || e.CurrentWeight > best.CurrentWeight) best = e;
        }
        best!.CurrentWeight -= total;
        return best;
    }

    // The same arithmetic on copies: CurrentWeight is read, never written.
    public PolicyChoice Explain(ReadOnlySpan<BackendEntry> eligible, Random draw)
    {
        BackendEntry? best = null;
        long total = 0, bestWeight = 0;
        var text = new StringBuilder("smooth weighted round-robin: running weight + weight = ");
        foreach (var e in eligible)
        {
            var w = e.CurrentWeight + e.EffectiveWeight;
            total += e.EffectiveWeight;
            text.Append(CultureInfo.InvariantCulture, $"{e.Route.Url} {Units.Of(e.CurrentWeight)}+{Units.Of(e.EffectiveWeight)}={Units.Of(w)}, ");
            if (best is null || w > bestWeight) (best, bestWeight) = (e, w);
        }
        text.Length -= 2;
        text.Append(CultureInfo.InvariantCulture, $"; the largest is {best!.Route.Url} ({Units.Of(bestWeight)}), which then drops by the total weight {Units.Of(total)} to {Units.Of(bestWeight - total)}");
        return new(best, text.ToString());
    }
}
