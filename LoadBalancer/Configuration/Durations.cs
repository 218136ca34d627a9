using System.Globalization;

namespace LoadBalancer.Configuration;

// "250ms", "10s", "2m", "1h" (a decimal number is fine: "1.5s") or .NET's "00:00:10".
public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        var s = text.Trim();
        var (unit, factorMs) =
            s.EndsWith("ms", StringComparison.OrdinalIgnoreCase) ? ("ms", 1.0) :
            s.EndsWith('s') || s.EndsWith('S') ? ("s", 1000.0) :
            s.EndsWith('m') || s.EndsWith('M') ? ("m", 60_000.0) :
            s.EndsWith('h') || s.EndsWith('H') ? ("h", 3_600_000.0) :
            ("", 0.0);
        if (unit.Length > 0)
        {
            var number = s[..^unit.Length];
            if (number.Length == 0 || !char.IsAsciiDigit(number[0])) return false;
            if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n)) return false;
            var ms = n * factorMs;
            if (double.IsInfinity(ms) || ms > TimeSpan.MaxValue.TotalMilliseconds) return false;
            value = TimeSpan.FromMilliseconds(ms);
            return true;
        }
        return s.Contains(':') && TimeSpan.TryParseExact(s, "c", CultureInfo.InvariantCulture, out value);
    }

    public static string Format(TimeSpan t) =>
        t.TotalMilliseconds < 1000 || t.Milliseconds != 0 ? $"{t.TotalMilliseconds:0.###}ms"
        : t.TotalSeconds < 60 || t.Seconds != 0 ? $"{t.TotalSeconds:0}s"
        : t.TotalMinutes < 60 || t.Minutes != 0 ? $"{t.TotalMinutes:0}m"
        : $"{t.TotalHours:0}h";

    /// <summary>A moment as a wall clock, UTC, to the second: "12:00:31".</summary>
    public static string Clock(DateTimeOffset t) => t.UtcDateTime.ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
}
