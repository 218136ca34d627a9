using System.Text.RegularExpressions;
using System.Threading.Channels;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Hosting;

namespace LoadBalancer.Tests.Walkthrough;

// One diagram and one count of stages and channels, everywhere: the README's diagram, the
// walkthrough's (the same text), the counts in both, and Program.cs's comment, checked against
// the code. A new stage (a BackgroundService), a new channel (in PipelineChannels) or a new
// message fails here until the docs show it, which is the point: each new stage is the
// pattern applied again, and the lesson is to see it in the one picture.
public sealed partial class DiagramTests
{
    static readonly string Root = DocsLinksTests.RepoRoot();
    static readonly string[] Numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

    static string[] Stages() => typeof(PipelineChannels).Assembly.GetTypes()
        .Where(t => !t.IsAbstract && typeof(BackgroundService).IsAssignableFrom(t)).Select(t => t.Name).Order().ToArray();

    static string[] Channels() => typeof(PipelineChannels).GetProperties()
        .Where(p => p.PropertyType.IsGenericType && p.PropertyType.GetGenericTypeDefinition() == typeof(Channel<>))
        .Select(p => p.Name.ToLowerInvariant()).Order().ToArray();

    static string[] Messages() => typeof(PipelineChannels).Assembly.GetTypes()
        .Where(t => !t.IsAbstract && (t.IsSubclassOf(typeof(StateEvent)) || t.IsSubclassOf(typeof(StateRequest))))
        .Select(t => t.Name).Append(nameof(Tick)).Order().ToArray();

    static string Mermaid(string page)
    {
        var text = File.ReadAllText(Path.Combine(Root, page));
        var m = MermaidBlock().Match(text);
        Assert.True(m.Success, $"{page} has no ```mermaid block");
        return m.Groups[1].Value;
    }

    [Fact]
    public void Diagram_ReadmeAndWalkthrough_AreTheSame()
    {
        Assert.Equal(Mermaid("README.md"), Mermaid("docs/walkthrough.md"));
    }

    [Fact]
    public void Diagram_ShowsEveryStageChannelAndMessage()
    {
        var diagram = Mermaid("README.md");

        foreach (var stage in Stages())
            Assert.True(Regex.IsMatch(diagram, $@"\[\(?""{stage}<br/>"), $"stage {stage} is not a box in the diagram");
        foreach (var channel in Channels())
            Assert.True(diagram.Contains($"\"{channel}: ", StringComparison.Ordinal), $"channel {channel} labels no arrow in the diagram");
        foreach (var message in Messages())
            Assert.True(Regex.IsMatch(diagram, $@"\b{message}\b"), $"message {message} is on no arrow in the diagram");

        // Every "name: cargo" label is a channel or a reply slot: nothing that is not a channel is drawn as one.
        var known = Channels().Append("reply").ToHashSet();
        foreach (Match label in EdgeLabel().Matches(diagram))
            Assert.True(known.Contains(label.Groups[1].Value), $"arrow label \"{label.Groups[1].Value}: ...\" names no channel");
    }

    [Fact]
    public void Counts_InReadmeWalkthroughAndProgram_MatchTheCode()
    {
        var (stages, channels) = (Numbers[Stages().Length], Numbers[Channels().Length]);

        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        Assert.Contains($"## How it is built: {stages} stages, {channels} channels", readme);

        var walkthrough = File.ReadAllText(Path.Combine(Root, "docs/walkthrough.md"));
        Assert.Matches($@"(?i){stages} long-running stages \([^)]*\) joined by {channels}\s+channels", walkthrough);

        // Program.cs's opening comment: the count, and every stage and channel by name.
        var program = File.ReadAllLines(Path.Combine(Root, "LoadBalancer/Program.cs"));
        var comment = string.Join("\n", program.TakeWhile(l => !l.StartsWith("public static class Program", StringComparison.Ordinal))
            .Where(l => l.StartsWith("//", StringComparison.Ordinal)));
        Assert.Contains($"{char.ToUpperInvariant(stages[0])}{stages[1..]} stages, {channels} channels", comment);
        foreach (var name in Stages().Concat(Channels()))
            Assert.True(Regex.IsMatch(comment, $@"\b{name}\b"), $"Program.cs's opening comment does not name {name}");
    }

    [GeneratedRegex(@"```mermaid\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex MermaidBlock();

    [GeneratedRegex(@"""([a-z]+): ")]
    private static partial Regex EdgeLabel();
}
