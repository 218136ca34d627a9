using System.Text;
using System.Text.RegularExpressions;

namespace LoadBalancer.Tests.Walkthrough;

// Every relative link in README.md and docs/**/*.md must lead somewhere, and a link into code
// must land on what its text names, so the docs cannot silently drift when code moves:
//   - the file exists; a #heading anchor names a heading of that Markdown file;
//   - a #Lnn (or #Lnn-Lmm) line anchor is inside the file, and its first line is code: not blank,
//     not a lone brace (a range may end on a closing brace, not on a blank line);
//   - every code name in the link text is on the anchored line(s): the whole text when it is
//     code ([`BackendState.RunAsync`] -> RunAsync), else each `code span` in it ([linked token
//     and `CancelAfter(timeout)`] -> CancelAfter, timeout). A call's arguments count too, so
//     [`Handle(StateEvent)`] cannot land on Handle(StateRequest);
//   - a link into a code file without an anchor: the file mentions every code name in the text.
// A failure says where each name is now, to re-point the anchor.
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
        var checkedNames = 0;
        foreach (var page in pages)
        {
            foreach (var (lineNo, text, target) in Links(page))
            {
                checkedLinks++;
                checkedNames += CodeNames(text).Count;
                var problem = Check(root, page, text, target);
                if (problem is not null) problems.Add($"{Path.GetRelativePath(root, page)}:{lineNo}: [{text}]({target}): {problem}");
            }
        }

        Assert.True(File.Exists(Path.Combine(docs, "walkthrough.md")), "docs/walkthrough.md is missing");
        Assert.True(checkedLinks > 20, $"only {checkedLinks} relative links found: is the link parser still working?");
        Assert.True(checkedNames > 50, $"only {checkedNames} code names checked: is the name parser still working?");
        Assert.True(problems.Count == 0, "broken links:\n" + string.Join("\n", problems));
    }

    // The checker itself, on a file made for it: each kind of drift it must catch.
    [Theory]
    [InlineData("[`Run`](Code.cs#L3)", null)]
    [InlineData("[`Worker.Run()`](Code.cs#L3)", null)]
    [InlineData("[`Handle(Ping)`](Code.cs#L8)", null)]
    [InlineData("[the loop](Code.cs#L3-L6)", null)]
    [InlineData("[drains `_queue` and `items`](Code.cs#L5)", null)]
    [InlineData("[`Worker`](Code.cs)", null)]
    [InlineData("[the worker](Code.cs#L3)", null)]
    [InlineData("[loop](Code.cs#L3)", null)]
    [InlineData("[Worker.Run](Code.cs#L3)", null)]
    [InlineData("[Worker.Stop](Code.cs#L3)", "line 3 does not mention Stop (nowhere in the file)")]
    [InlineData("[Handle](Code.cs#L3)", "line 3 does not mention Handle (first mention now at line 8)")]
    [InlineData("[`Run`](Code.cs#L4)", "line 4 is a lone brace")]
    [InlineData("[`Run`](Code.cs#L7)", "line 7 is blank")]
    [InlineData("[the loop](Code.cs#L4-L6)", "line 4 is a lone brace")]
    [InlineData("[the loop](Code.cs#L3-L7)", "line 7 is blank")]
    [InlineData("[`Handle(Pong)`](Code.cs#L8)", "line 8 does not mention Pong (first mention now at line 9)")]
    [InlineData("[`Handle(Ping)`](Code.cs#L9)", "line 9 does not mention Ping (first mention now at line 8)")]
    [InlineData("[`Run`](Code.cs#L8-L9)", "lines 8-9 do not mention Run (first mention now at line 3)")]
    [InlineData("[linked token and `CancelAfter(timeout)`](Code.cs#L5)", "line 5 does not mention CancelAfter (nowhere in the file)")]
    [InlineData("[`Stop`](Code.cs)", "the file does not mention Stop")]
    [InlineData("[`Run`](Code.cs#L12)", "the file has 11 lines")]
    public void Check_LinkIntoCode_CatchesEachKindOfDrift(string link, string? expected)
    {
        var root = Directory.CreateTempSubdirectory("lb-docslinks-").FullName;
        try
        {
            File.WriteAllLines(Path.Combine(root, "Code.cs"),
            [
                "sealed class Worker",     // 1
                "{",                       // 2
                "    void Run()",          // 3
                "    {",                   // 4
                "        while (_queue.TryRead(out var items)) { }",   // 5
                "    }",                   // 6
                "",                        // 7
                "    void Handle(Ping p) { }", // 8
                "    void Handle(Pong p) { }", // 9
                "}",                       // 10
                "// end",                  // 11
            ]);
            var page = Path.Combine(root, "page.md");
            var m = Link().Match(link);
            Assert.True(m.Success, link);

            var problem = Check(root, page, m.Groups["text"].Value, m.Groups["target"].Value);

            Assert.Equal(expected, problem);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    internal static string? Check(string root, string page, string text, string target)
    {
        var hash = target.IndexOf('#');
        var path = hash < 0 ? target : target[..hash];
        var anchor = hash < 0 ? null : target[(hash + 1)..];

        var file = path.Length == 0 ? page : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(page)!, Uri.UnescapeDataString(path)));
        if (!file.StartsWith(root, StringComparison.Ordinal)) return "points outside the repository";
        if (Directory.Exists(file)) return anchor is null ? null : "an anchor on a folder";
        if (!File.Exists(file)) return "no such file";
        var isMarkdown = file.EndsWith(".md", StringComparison.OrdinalIgnoreCase);
        if (anchor is null)
        {
            if (isMarkdown) return null;
            var all = File.ReadAllLines(file);
            var absent = CodeNames(text).FirstOrDefault(n => !all.Any(Mention(n).IsMatch));
            return absent is null ? null : $"the file does not mention {absent}";
        }

        var lines = File.ReadAllLines(file);
        var lineAnchor = LineAnchor().Match(anchor);
        if (lineAnchor.Success)
        {
            var from = int.Parse(lineAnchor.Groups[1].Value);
            var to = lineAnchor.Groups[2].Success ? int.Parse(lineAnchor.Groups[2].Value) : from;
            if (from < 1 || to < from || to > lines.Length) return $"the file has {lines.Length} lines";
            if (string.IsNullOrWhiteSpace(lines[from - 1])) return $"line {from} is blank";
            if (LoneBrace().IsMatch(lines[from - 1])) return $"line {from} is a lone brace";
            if (string.IsNullOrWhiteSpace(lines[to - 1])) return $"line {to} is blank";
            foreach (var name in CodeNames(text))
            {
                var word = Mention(name);
                if (lines[(from - 1)..to].Any(word.IsMatch)) continue;
                var now = Array.FindIndex(lines, word.IsMatch);
                var where = to > from ? $"lines {from}-{to} do not" : $"line {from} does not";
                return $"{where} mention {name}" + (now >= 0 ? $" (first mention now at line {now + 1})" : " (nowhere in the file)");
            }
            return null;
        }
        if (!isMarkdown) return "a heading anchor on a file that is not Markdown";
        return Slugs(lines).Contains(anchor) ? null : "no heading with that anchor";
    }

    // A name as a whole word; a leading underscore may come before it (`events` is _events).
    static Regex Mention(string name) => new($@"(?<![A-Za-z0-9]){Regex.Escape(name)}(?![A-Za-z0-9_])");

    // The code names a link text makes a claim about:
    //   `BackendState.RunAsync` -> RunAsync; `Select<TA, TB>` -> Select; `Handle(StateEvent)` ->
    //   Handle, StateEvent; `forwarder.SendAsync(context, backend.Key, ...)` -> SendAsync, context, Key;
    //   prose, a file name, `Connection: close`, `"text"`, `503` -> nothing.
    // The whole text counts when it is code without backticks; otherwise each `code span`.
    internal static List<string> CodeNames(string text)
    {
        var spans = CodeSpan().Matches(text).Select(m => m.Groups[1].Value).ToList();
        // Without backticks, only text that looks like code: PipelineChannels, Log.Started, Run();
        // not a plain word such as [linked] or [here].
        if (spans.Count == 0 && PlainCode().IsMatch(text)) spans.Add(text);
        var names = new List<string>();
        foreach (var raw in spans)
        {
            var t = raw.Trim();
            if (t.StartsWith("await ", StringComparison.Ordinal)) t = t["await ".Length..];
            if (t.StartsWith("new ", StringComparison.Ordinal)) t = t["new ".Length..];
            if (FileLike().IsMatch(t)) continue;
            var call = Call().Match(t);
            if (!call.Success) continue;
            var member = Generic().Replace(call.Groups["member"].Value, "");
            names.Add(member[(member.LastIndexOf('.') + 1)..]);
            if (!call.Groups["args"].Success) continue;
            foreach (var arg in call.Groups["args"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                if (Identifier().IsMatch(arg)) names.Add(arg[(arg.LastIndexOf('.') + 1)..]);
        }
        return names;
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
    internal static HashSet<string> Slugs(string[] lines)
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

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LoadBalancer.sln"))) return dir.FullName;
        throw new InvalidOperationException("LoadBalancer.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"!?\[(?<text>(?:[^\[\]]|\[[^\]]*\])*)\]\((?<target><[^>]+>|[^)\s]+)(?:\s+""[^""]*"")?\)")]
    internal static partial Regex Link();

    [GeneratedRegex(@"^L(\d+)(?:-L(\d+))?$")]
    private static partial Regex LineAnchor();

    [GeneratedRegex(@"^#{1,6}\s+(.*?)\s*#*\s*$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex CodeSpan();

    // Name, Type.Member, Type<T>.Member, Member(), Member(arg, x.y, ...), Type<TA, TB>.
    [GeneratedRegex(@"^(?<member>[A-Za-z_]\w*(?:<[\w, ]*>)?(?:\.[A-Za-z_]\w*(?:<[\w, ]*>)?)*)(?:\((?<args>[^()]*)\))?$")]
    private static partial Regex Call();

    [GeneratedRegex(@"^[A-Za-z_][\w.]*$")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"^(?:[A-Z]\w*|\w+[._(<].*)$")]
    private static partial Regex PlainCode();

    [GeneratedRegex(@"<[\w, ]*>")]
    private static partial Regex Generic();

    [GeneratedRegex(@"^\s*[{}()\[\];,]+\s*$")]
    private static partial Regex LoneBrace();

    [GeneratedRegex(@"\.(cs|md|json|sh|csproj|sln|go)$")]
    private static partial Regex FileLike();
}
