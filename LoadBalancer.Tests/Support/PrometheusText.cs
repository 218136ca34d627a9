using System.Globalization;
using System.Text;

namespace LoadBalancer.Tests.Support;

// A strict reader of the Prometheus text exposition format 0.0.4, so a test fails on output a
// real scraper would reject or misread: "# HELP name text", "# TYPE name type", samples
// `name{label="value",...} number [timestamp]` with \\ \" \n escapes in label values. Every
// sample must belong to a family declared by TYPE before it, a family's lines must be
// contiguous, no series may repeat, and a histogram's buckets must be cumulative and end in
// le="+Inf" equal to its _count.
public sealed class PrometheusText
{
    public IReadOnlyDictionary<string, MetricFamily> Families { get; }

    PrometheusText(IReadOnlyDictionary<string, MetricFamily> families) => Families = families;

    public MetricFamily Family(string name) =>
        Families.TryGetValue(name, out var f) ? f
            : throw new KeyNotFoundException($"no metric family {name}; have: {string.Join(", ", Families.Keys)}");

    public static PrometheusText Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n')) throw new FormatException("the last line must end with \\n");
        var families = new Dictionary<string, MetricFamily>();
        var helps = new HashSet<string>();
        var finished = new HashSet<string>(); // families whose block of lines has ended
        var series = new HashSet<string>();
        MetricFamily? current = null;

        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
        {
            var line = lines[i];
            var where = $"line {i + 1} \"{line}\"";
            if (line.Length == 0) continue;
            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length < 3 || parts[0] != "#" || parts[1] is not ("HELP" or "TYPE")) continue; // a comment
                var name = parts[2];
                if (!IsMetricName(name)) throw new FormatException($"{where}: bad metric name");
                if (parts[1] == "HELP")
                {
                    if (!helps.Add(name)) throw new FormatException($"{where}: second HELP for {name}");
                    Unescape(parts.Length > 3 ? parts[3] : "", labelValue: false, where);
                    continue;
                }
                var type = parts.Length > 3 ? parts[3] : "";
                if (type is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                    throw new FormatException($"{where}: unknown type \"{type}\"");
                if (families.ContainsKey(name)) throw new FormatException($"{where}: second TYPE for {name}");
                if (current is not null) finished.Add(current.Name);
                current = new MetricFamily(name, type);
                families.Add(name, current);
                continue;
            }

            var sample = ParseSample(line, where);
            var family = FamilyOf(sample.Name, families)
                ?? throw new FormatException($"{where}: sample {sample.Name} has no TYPE line before it");
            if (family != current)
            {
                if (finished.Contains(family.Name)) throw new FormatException($"{where}: lines of {family.Name} are not contiguous");
                if (current is not null) finished.Add(current.Name);
                current = family;
            }
            var key = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
            if (!series.Add(key)) throw new FormatException($"{where}: series {key} appears twice");
            family.Add(sample);
        }

        foreach (var f in families.Values.Where(f => f.Type == "histogram")) CheckHistogram(f);
        return new PrometheusText(families);
    }

    static MetricFamily? FamilyOf(string sampleName, Dictionary<string, MetricFamily> families)
    {
        if (families.TryGetValue(sampleName, out var exact) && exact.Type is not "histogram") return exact;
        foreach (var suffix in (string[])["_bucket", "_sum", "_count"])
        {
            if (!sampleName.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var baseName = sampleName[..^suffix.Length];
            if (families.TryGetValue(baseName, out var f)
                && (f.Type == "histogram" || f.Type == "summary" && suffix != "_bucket"))
                return f;
        }
        return families.TryGetValue(sampleName, out var s) && s.Type == "summary" ? s : null;
    }

    static void CheckHistogram(MetricFamily f)
    {
        static string SeriesKey(MetricSample s) =>
            string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

        foreach (var group in f.Samples.GroupBy(SeriesKey))
        {
            var buckets = group.Where(s => s.Name == f.Name + "_bucket").ToList();
            var count = group.SingleOrDefault(s => s.Name == f.Name + "_count")
                ?? throw new FormatException($"histogram {f.Name}{{{group.Key}}} has no _count");
            if (group.All(s => s.Name != f.Name + "_sum")) throw new FormatException($"histogram {f.Name}{{{group.Key}}} has no _sum");
            if (buckets.Any(b => !b.Labels.ContainsKey("le"))) throw new FormatException($"histogram {f.Name}: a bucket without le");
            var ordered = buckets.OrderBy(b => ParseNumber(b.Labels["le"], "le")).ToList();
            if (ordered.Count == 0 || ordered[^1].Labels["le"] != "+Inf")
                throw new FormatException($"histogram {f.Name}{{{group.Key}}} has no le=\"+Inf\" bucket");
            for (var i = 1; i < ordered.Count; i++)
                if (ordered[i].Value < ordered[i - 1].Value)
                    throw new FormatException($"histogram {f.Name}{{{group.Key}}}: buckets are not cumulative");
            if (ordered[^1].Value != count.Value)
                throw new FormatException($"histogram {f.Name}{{{group.Key}}}: +Inf bucket {ordered[^1].Value} != _count {count.Value}");
        }
    }

    static MetricSample ParseSample(string line, string where)
    {
        var i = 0;
        while (i < line.Length && line[i] is not ('{' or ' ')) i++;
        var name = line[..i];
        if (!IsMetricName(name)) throw new FormatException($"{where}: bad metric name");

        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}') { i++; break; }
                var start = i;
                while (i < line.Length && line[i] != '=') i++;
                var labelName = line[start..i];
                if (!IsLabelName(labelName)) throw new FormatException($"{where}: bad label name \"{labelName}\"");
                if (i + 1 >= line.Length || line[i + 1] != '"') throw new FormatException($"{where}: label value must be quoted");
                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length) throw new FormatException($"{where}: unterminated label value");
                    var c = line[i++];
                    if (c == '"') break;
                    if (c == '\\')
                    {
                        if (i >= line.Length) throw new FormatException($"{where}: dangling backslash");
                        value.Append(line[i++] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            var other => throw new FormatException($"{where}: bad escape \\{other} in a label value"),
                        });
                    }
                    else value.Append(c);
                }
                if (!labels.TryAdd(labelName, value.ToString())) throw new FormatException($"{where}: label {labelName} twice");
                if (i < line.Length && line[i] == ',') i++;
                else if (i >= line.Length || line[i] != '}') throw new FormatException($"{where}: expected , or }} after a label");
            }
        }
        if (i >= line.Length || line[i] != ' ') throw new FormatException($"{where}: expected a space before the value");
        var rest = line[(i + 1)..].Split(' ');
        if (rest.Length is < 1 or > 2) throw new FormatException($"{where}: expected value [timestamp]");
        var number = ParseNumber(rest[0], where);
        if (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            throw new FormatException($"{where}: bad timestamp");
        return new MetricSample(name, labels, number);
    }

    static double ParseNumber(string text, string where) => text switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && text.Trim() == text
            ? d : throw new FormatException($"{where}: \"{text}\" is not a number"),
    };

    static string Unescape(string text, bool labelValue, string where)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\') { sb.Append(text[i]); continue; }
            if (++i >= text.Length) throw new FormatException($"{where}: dangling backslash");
            sb.Append(text[i] switch
            {
                '\\' => '\\',
                'n' => '\n',
                '"' when labelValue => '"',
                var other => throw new FormatException($"{where}: bad escape \\{other}"),
            });
        }
        return sb.ToString();
    }

    static bool IsMetricName(string s) =>
        s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] is '_' or ':') && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':');

    static bool IsLabelName(string s) =>
        s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] == '_') && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}

public sealed class MetricFamily(string name, string type)
{
    readonly List<MetricSample> _samples = [];
    public string Name { get; } = name;
    public string Type { get; } = type;
    public IReadOnlyList<MetricSample> Samples => _samples;
    internal void Add(MetricSample s) => _samples.Add(s);

    /// <summary>The one sample named <paramref name="sampleName"/> whose labels include all of <paramref name="labels"/>.</summary>
    public MetricSample Single(string sampleName, params (string Name, string Value)[] labels)
    {
        var found = _samples.Where(s => s.Name == sampleName && labels.All(l => s.Labels.TryGetValue(l.Name, out var v) && v == l.Value)).ToList();
        return found.Count == 1 ? found[0]
            : throw new InvalidOperationException($"{found.Count} samples {sampleName} with {string.Join(",", labels)}; have:\n"
                + string.Join("\n", _samples));
    }
}

public sealed record MetricSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public override string ToString() => $"{Name}{{{string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} {Value}";
}
