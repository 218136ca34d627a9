using System.Globalization;
using System.Text;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Balancing;

// Fewest in-flight requests per unit of effective weight. Ties rotate (the scan starts one further each
// time), so idle backends share the traffic instead of the first one taking it all. A pick finds
// the same one in the index's segment tree (BackendIndex.LeastLoaded) without the scan.
public sealed class LeastConnectionsPolicy : IBalancingPolicy
{
    uint _start;

    public BackendEntry Choose(BackendIndex candidates, PickContext? context) =>
        candidates.LeastLoaded((int)(_start++ % (uint)candidates.Count));

    public BackendEntry Choose(ReadOnlySpan<BackendEntry> eligible)
    {
        var n = eligible.Length;
        var first = (int)(_start++ % (uint)n);
        return Scan(eligible, first);
    }

    // The scan Choose would make, from the same start, without moving the start.
    public PolicyChoice Explain(ReadOnlySpan<BackendEntry> eligible, Random draw)
    {
        var n = eligible.Length;
        var first = (int)(_start % (uint)n);
        var best = Scan(eligible, first);
        var text = new StringBuilder("least-connections: inFlight/weight ");
        foreach (var e in eligible) text.Append(CultureInfo.InvariantCulture, $"{e.Route.Url} {e.InFlight}/{Units.Of(e.EffectiveWeight)}, ");
        text.Length -= 2;
        text.Append(CultureInfo.InvariantCulture,
            $"; the lowest is {best.Route.Url} ({best.InFlight}/{Units.Of(best.EffectiveWeight)}); ties go to the first from {eligible[first].Route.Url} on (the start rotates each pick)");
        return new(best, text.ToString());
    }

    static BackendEntry Scan(ReadOnlySpan<BackendEntry> eligible, int first)
    {
        var n = eligible.Length;
        var best = eligible[first];
        for (var k = 1; k < n; k++)
        {
            var e = eligible[(first + k) % n];
            if (Load.Less(e, best)) best = e;
        }
        return best;
    }
}

static class Units
{
    /// <summary>An effective weight (thousandths, SlowStart.Scale) in weight units: "5", "0.5".</summary>
    public static string Of(long scaled) => (scaled / (double)SlowStart.Scale).ToString("0.###", CultureInfo.InvariantCulture);
}

static class Load
{
    /// <summary>a.InFlight / a.EffectiveWeight &lt; b.InFlight / b.EffectiveWeight, without division
    /// (the effective weight: a backend in slow start counts as more loaded).</summary>
    public static bool Less(BackendEntry a, BackendEntry b) => a.InFlight * b.EffectiveWeight < b.InFlight * a.EffectiveWeight;
}
