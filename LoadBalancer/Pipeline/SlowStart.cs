namespace LoadBalancer.Pipeline;

// The slow-start ramp (issue 12), a pure function of (since, now): a backend that becomes
// eligible again gets 10% of its weight at once, rising linearly to 100% over slowStart. The
// state task works it out at each pick, so there is no timer and a fake clock drives it in tests.
// Weights are kept in thousandths (BackendEntry.EffectiveWeight), so a ramp of weight 1 has
// 900 steps and the policies stay in integer arithmetic (nginx's 5,1,1 order is scale-free).
public static class SlowStart
{
    /// <summary>One unit of weight in EffectiveWeight.</summary>
    public const long Scale = 1000;

    const double From = 0.1;

    /// <summary>The effective weight, in thousandths of a unit, of a backend of weight that has
    /// warmed since since; full weight once ramp has passed (or when ramp is zero: off).</summary>
    public static long Weight(int weight, DateTimeOffset since, DateTimeOffset now, TimeSpan ramp)
    {
        var full = weight * Scale;
        if (ramp <= TimeSpan.Zero) return full;
        var progress = (now - since) / ramp;
        if (progress >= 1) return full;
        if (progress < 0) progress = 0;
        return Math.Max(1, (long)Math.Round(full * (From + (1 - From) * progress)));
    }

    /// <summary>True once the ramp is over: the backend takes its full weight from now on.</summary>
    public static bool Over(DateTimeOffset since, DateTimeOffset now, TimeSpan ramp) => now - since >= ramp;
}
