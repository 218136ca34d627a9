using System.Text;
using System.Text.Json;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Configuration;

// adminToken and journal.*: parsed, validated (one line naming the key), described on reload, and
// the token never written where the journal goes.
public sealed class JournalConfigTests : IDisposable
{
    const string OneBackend = """ "backends": [ { "url": "http://127.0.0.1:8000" } ] """;

    readonly string _dir = Directory.CreateTempSubdirectory("lb-journal-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string File => Path.Combine(_dir, "lb.json");

    LbConfig Parse(string extra) => ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""{ {{OneBackend}}{{extra}} }"""), File);

    string Error(string extra) => Assert.Throws<ConfigException>(() => Parse(extra)).Message;

    [Fact]
    public void Parse_Nothing_NoTokenJournalOff()
    {
        var config = Parse("");
        Assert.Null(config.AdminToken);
        Assert.False(config.Journal.On);
        Assert.Equal(100L << 20, config.Journal.MaxBytes);
    }

    [Fact]
    public void Parse_JournalPath_RelativeToTheFileAndSize()
    {
        var config = Parse(""", "journal": { "path": "state.journal", "maxSizeMB": 5 }, "adminToken": "abc-123" """);
        Assert.Equal(Path.Combine(_dir, "state.journal"), config.Journal.Path);
        Assert.Equal(5L << 20, config.Journal.MaxBytes);
        Assert.Equal("abc-123", config.AdminToken);
    }

    [Theory]
    [InlineData(""", "adminToken": "" """, "adminToken: is empty")]
    [InlineData(""", "adminToken": "a b" """, "adminToken: must be printable ASCII without spaces")]
    [InlineData(""", "adminToken": 5 """, "adminToken")]
    [InlineData(""", "journal": { "path": "" } """, "journal.path: is empty")]
    [InlineData(""", "journal": { "path": "no/such/folder/j" } """, "journal.path: \"no/such/folder/j\": the folder")]
    [InlineData(""", "journal": { "path": "." } """, "journal.path: \".\" is a folder")]
    [InlineData(""", "journal": { "path": "j", "maxSizeMB": 0 } """, "journal.maxSizeMB")]
    public void Parse_Bad_OneLineNamingTheKey(string extra, string expected)
    {
        var message = Error(extra);
        Assert.Contains(expected, message);
        Assert.StartsWith(File, message);
    }

    [Fact]
    public void Describe_TokenChanged_SaysSoWithoutTheValue()
    {
        var before = Parse(""", "adminToken": "old-secret" """);
        var after = Parse(""", "adminToken": "new-secret" """);
        var text = ConfigDiff.Describe(before, after);
        Assert.Equal("adminToken changed", text);
        Assert.DoesNotContain("secret", text);
    }

    [Fact]
    public void JournalStart_ConfigWithToken_TokenNotWritten()
    {
        var config = Parse(""", "adminToken": "never-in-a-file" """);
        var line = JsonSerializer.Serialize<JournalEntry>(new JournalEntry.Start(1, DateTimeOffset.UnixEpoch, 7, config), JournalJson.Default.JournalEntry);
        Assert.DoesNotContain("never-in-a-file", line);
        Assert.StartsWith("""{"t":"start","v":1,""", line);
    }
}
