using System.Text;
using System.Text.RegularExpressions;

namespace LoadBalancer.Tests.Walkthrough;

// Every relative link in README.md and docs/*.md must lead somewhere: the file exists, a #Lnn
// line anchor is inside the file, a #heading anchor names a heading of that Markdown file.
// A line anchor whose link text is a code name ([`BackendState.RunAsync`](...#L88)) must land
// on a line that mentions that name (RunAsync), so the docs cannot silently drift when code moves.
public sealed partial class DocsLinksTests
{
    [Fact]
    public void Links_InReadmeAndDocs_ResolveToFilesLinesAndHeadings()
    {
        var root = RepoRoot();
        var pages = new List<string> { Path.Combine(root, "README.md") };
        var docs = Path.Combine(root, "docs");
        if (Directory.Exists(docs)) pages.AddRange(Directory.GetFiles(docs, "*.md", SearchOption.AllDirectories));

        var problems = new List<string>();
        var checkedLinks = 0;
        foreach (var page in pages)
        {
            foreach (var (lineNo, text, target) in Links(page))
            {
                checkedLinks++;
                var problem = Check(root, page, text, target);
                if (problem is not null) problems.Add($"{Path.GetRelativePath(root, page)}:{lineNo}: [{text}]({target}): {problem}");
            }
        }

        Assert.True(File.Exists(Path.Combine(docs, "walkthrough.md")), "docs/walkthrough.md is missing");
        Assert.True(checkedLinks > 20, $"only {checkedLinks} relative links found: is the link parser still working?");
        Assert.True(problems.Count == 0, "broken links:\n" + string.Join("\n", problems));
    }

    static string? Check(string root, string page, string text, string target)
    {
        var hash = target.IndexOf('#');
        var path = hash < 0 ? target : target[..hash];
        var anchor = hash < 0 ? null : target[(hash + 1)..];

        var file = path.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, Uri.UnescapeDataString(path)));
        if (!file.StartsWith(root, StringComparison.Ordinal)) return "points outside the repository";
        if (Directory.Exists(file)) return anchor is null ? null : "an anchor on a folder";
        if (!File.Exists(file)) return "no such file";
        if (anchor is null) return null;

        var lines = File.ReadAllLines(file);
        var lineAnchor = LineAnchor().Match(anchor);
        if (lineAnchor.Success)
        {
            var from = int.Parse(lineAnchor.Groups[1].Value);
            var to = lineAnchor.Groups[2].Success ? int.Parse(lineAnchor.Groups[2].Value) : from;
            if (from < 1 || to < from || to > lines.Length) return $"the file has {lines.Length} lines";
            if (CodeName(text) is not { } name) return null;
            var word = new Regex($@"\b{Regex.Escape(name)}\b");
            if (lines[(from - 1)..to].Any(word.IsMatch)) return null;
            var now = Array.FindIndex(lines, word.IsMatch);
            return $"line {from}{(to > from ? $"-{to}" : "")} does not mention {name}" + (now >= 0 ? $" (first mention now at line {now + 1})" : "");
        }
        if (!file.EndsWith(".md", StringComparison.OrdinalIgnoreCase)) return "a heading anchor on a file that is not Markdown";
        return Slugs(lines).Contains(anchor) ? null : "no heading with that anchor";
    }

    // `BackendState.RunAsync` -> RunAsync; `Select.WaitAsync()` -> WaitAsync; prose or a file name -> null.
    static string? CodeName(string text)
    {
        var t = text.Replace("`", "").Trim();
        if (!CodeLike().IsMatch(t) || FileLike().IsMatch(t)) return null;
        t = t.EndsWith("()", StringComparison.Ordinal) ? t[..^2] : t;
        if (t.IndexOf('<') is > 0 and var lt) t = t[..lt]; // Select<TA, TB> -> Select
        return t[(t.LastIndexOf('.') + 1)..];
    }

    // [text](target) outside fenced code blocks; external links are not checked here.
    static IEnumerable<(int Line, string Text, string Target)> Links(string page)
    {
        var fenced = false;
        var lines = File.ReadAllLines(page);
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].TrimStart().StartsWith("```", StringComparison.Ordinal)) { fenced = !fenced; continue; }
            if (fenced) continue;
            foreach (Match m in Link().Matches(lines[i]))
            {
                var target = m.Groups["target"].Value.Trim('<', '>');
                if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal)) continue;
                yield return (i + 1, m.Groups["text"].Value, target);
            }
        }
    }

    // GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1 -2 for repeats.
    static HashSet<string> Slugs(string[] lines)
    {
        var slugs = new HashSet<string>(StringComparer.Ordinal);
        var fenced = false;
        foreach (var line in lines)
        {
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal)) { fenced = !fenced; continue; }
            if (fenced) continue;
            var h = Heading().Match(line);
            if (!h.Success) continue;
            var text = Link().Replace(h.Groups[1].Value, m => m.Groups["text"].Value);
            var slug = new StringBuilder();
            foreach (var c in text.Trim().ToLowerInvariant())
                if (char.IsLetterOrDigit(c) || c is '-' or '_') slug.Append(c);
                else if (c == ' ') slug.Append('-');
            var s = slug.ToString();
            var unique = s;
            for (var n = 1; !slugs.Add(unique); n++) unique = $"{s}-{n}";
        }
        return slugs;
    }

    static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LoadBalancer.sln"))) return dir.FullName;
        throw new InvalidOperationException("LoadBalancer.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"!?\[(?<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?<target><[^>]+>|[^)\s]+)(?:\s+""[^""]*"")?\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"^L(\d+)(?:-L(\d+))?$")]
    private static partial Regex LineAnchor();

    [GeneratedRegex(@"^#{1,6}\s+(.*?)\s*#*\s*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"^[A-Za-z_][\w.<>,]*(\(\))?$")]
    private static partial Regex CodeLike();

    [GeneratedRegex(@"\.(cs|md|json|sh|csproj|sln)$")]
    private static partial Regex FileLike();
}
