using System.Text.RegularExpressions;

namespace LoadBalancer.Tests.Walkthrough;

// Every snippet in the docs that says it runs, runs, and prints what the page says. A page marks
// one with an HTML comment (invisible on GitHub) before a ```csharp block and its ```text output:
//
//   <!-- run: traps/traps.cs second-wait -->
//
// The test builds the file-based app named (relative to the page) once, runs it with the
// section name, and compares its stdout with the ```text block. The ```csharp block must be the
// app's own code: its lines, trimmed, appear in the app in that order and together (a line
// `// ...` in the snippet skips lines of the app).
[Collection(FileApp.Collection)]
public sealed partial class RunnableDocsTests
{
    static readonly string Root = DocsLinksTests.RepoRoot();

    public static TheoryData<string, int> Markers()
    {
        var data = new TheoryData<string, int>();
        foreach (var page in Directory.GetFiles(Path.Combine(Root, "docs"), "*.md", SearchOption.AllDirectories).Order())
        {
            var lines = File.ReadAllLines(page);
            for (var i = 0; i < lines.Length; i++)
                if (Marker().IsMatch(lines[i])) data.Add(Path.GetRelativePath(Root, page).Replace('\\', '/'), i + 1);
        }
        return data;
    }

    [Fact]
    public void Markers_InTheDocs_AreThere()
    {
        Assert.True(Markers().Count() >= 20, $"only {Markers().Count()} runnable snippets found: is the marker parser still working?");
    }

    [Theory]
    [MemberData(nameof(Markers))]
    public async Task Snippet_Runs_AndPrintsWhatThePageSays(string page, int line)
    {
        var lines = File.ReadAllLines(Path.Combine(Root, page));
        var marker = Marker().Match(lines[line - 1]);
        var source = Path.GetRelativePath(Root, Path.GetFullPath(Path.Combine(Root, Path.GetDirectoryName(page)!, marker.Groups["app"].Value)));
        var section = marker.Groups["section"].Value;
        var (code, expected) = Blocks(lines, line);
        Assert.True(expected is not null, $"{page}:{line}: no ```text block with the output after the marker");

        if (code is not null) AssertInSource(code, File.ReadAllLines(Path.Combine(Root, source)), $"{page}:{line}");

        var dll = await FileApp.BuildAsync(source);
        var (exit, stdout, stderr) = await FileApp.RunAsync(dll, section);
        Assert.True(exit == 0, $"{source} {section} exited {exit}:\n{stdout}\n{stderr}");
        Assert.Equal(Normalize(expected), Normalize(stdout));
    }

    // The ```csharp block (if any) and the ```text block that follow the marker, before any other marker.
    static (string[]? Code, string? Text) Blocks(string[] lines, int markerLine)
    {
        string[]? code = null;
        for (var i = markerLine; i < lines.Length; i++)
        {
            if (Marker().IsMatch(lines[i])) break;
            var fence = lines[i].Trim();
            if (fence is not ("```csharp" or "```text")) continue;
            var body = lines.Skip(i + 1).TakeWhile(l => l.Trim() != "```").ToArray();
            if (fence == "```csharp") { code ??= body; i += body.Length + 1; continue; }
            return (code, string.Join("\n", body));
        }
        return (code, null);
    }

    static void AssertInSource(string[] snippet, string[] source, string where)
    {
        var trimmed = source.Select(l => l.Trim()).ToArray();
        var chunks = new List<List<string>> { new() };
        foreach (var l in snippet.Select(l => l.Trim()).Where(l => l.Length > 0))
            if (l is "// ..." or "...") chunks.Add([]);
            else chunks[^1].Add(l);
        var at = 0;
        foreach (var chunk in chunks.Where(c => c.Count > 0))
        {
            var found = -1;
            for (var i = at; i + chunk.Count <= trimmed.Length && found < 0; i++)
            {
                var j = 0;
                var k = i;
                while (j < chunk.Count && k < trimmed.Length)
                {
                    if (trimmed[k].Length == 0) { k++; continue; } // blank lines in the app do not count
                    if (trimmed[k] != chunk[j]) break;
                    j++;
                    k++;
                }
                if (j == chunk.Count) { found = k; }
            }
            Assert.True(found >= 0, $"{where}: the snippet is not the app's code; not found in order:\n{string.Join("\n", chunk)}");
            at = found;
        }
    }

    static string Normalize(string? text) =>
        string.Join("\n", (text ?? "").ReplaceLineEndings("\n").Split('\n').Select(l => l.TrimEnd())).Trim('\n');

    [GeneratedRegex(@"^<!-- run: (?<app>\S+\.cs) (?<section>[\w-]+) -->$")]
    private static partial Regex Marker();
}
