using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Tests.Pipeline;

namespace LoadBalancer.Tests.Configuration;

// accessLog.path and accessLog.format: off by default, "-" for stdout, a file relative to
// lb.json's folder; what a reload's log line says when they change.
public sealed class AccessLogConfigTests : IDisposable
{
    const string OneBackend = """ "backends": [ { "url": "http://127.0.0.1:8000" } ] """;

    readonly string _dir = Directory.CreateTempSubdirectory("lb-accesslog-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string File => Path.Combine(_dir, "lb.json");

    LbConfig Parse(string accessLog, List<string>? warnings = null) =>
        ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""{ {{OneBackend}}, "accessLog": {{accessLog}} }"""), File, warnings);

    string Error(string accessLog) => Assert.Throws<ConfigException>(() => Parse(accessLog)).Message;

    [Fact]
    public void Parse_NoAccessLog_Off()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes($$"""{ {{OneBackend}} }"""), File);

        Assert.Equal(AccessLogConfig.Off, config.AccessLog);
        Assert.False(config.AccessLog.On);
    }

    [Fact]
    public void Parse_Dash_StdoutInJson()
    {
        var log = Parse("""{ "path": "-" }""").AccessLog;

        Assert.True(log.On);
        Assert.True(log.ToStdout);
        Assert.Equal(AccessLogFormat.Json, log.Format);
    }

    [Fact]
    public void Parse_RelativePath_ResolvedAgainstTheConfigFilesFolder()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "logs"));

        var log = Parse("""{ "path": "logs/access.log", "format": "Combined" }""").AccessLog;

        Assert.Equal(Path.Combine(_dir, "logs", "access.log"), log.Path);
        Assert.Equal(AccessLogFormat.Combined, log.Format);
    }

    [Fact]
    public void Parse_AbsolutePath_Kept()
    {
        var path = Path.Combine(_dir, "access.log");

        Assert.Equal(path, Parse($$"""{ "PATH": "{{path}}" }""").AccessLog.Path);
    }

    [Fact]
    public void Parse_UnknownFormat_NamesTheKeyAndTheFormats()
    {
        Assert.Equal($"{File}: accessLog.format: unknown format \"common\" (use json or combined)",
            Error("""{ "path": "-", "format": "common" }"""));
    }

    [Fact]
    public void Parse_FolderMissing_NamesTheKeyAndTheFolder()
    {
        Assert.Equal($"{File}: accessLog.path: \"nowhere/access.log\": the folder {Path.Combine(_dir, "nowhere")} does not exist",
            Error("""{ "path": "nowhere/access.log" }"""));
    }

    [Theory]
    [InlineData("""{ "path": "" }""", "is empty")]
    [InlineData("""{ "path": "." }""", "is a folder")]
    [InlineData("""{ "path": 3 }""", "must be a string")]
    [InlineData("""[ "-" ]""", "must be a JSON object")]
    public void Parse_BadPath_NamesTheKey(string accessLog, string problem)
    {
        var error = Error(accessLog);

        Assert.StartsWith($"{File}: accessLog", error);
        Assert.Contains(problem, error);
    }

    [Fact]
    public void Parse_FormatWithoutPath_OffWithAWarning()
    {
        var warnings = new List<string>();

        var log = Parse("""{ "format": "combined" }""", warnings).AccessLog;

        Assert.False(log.On);
        Assert.Equal([$"{File}: accessLog.path: not set, so the access log is off"], warnings);
    }

    [Fact]
    public void Parse_MisspeltKey_WarnsWithTheNearestOne()
    {
        var warnings = new List<string>();

        Parse("""{ "path": "-", "formt": "json" }""", warnings);

        Assert.Equal([$"{File}: accessLog.formt: unknown key, ignored (did you mean accessLog.format?)"], warnings);
    }

    [Fact]
    public void Describe_AccessLogChanged_NamesPathAndFormat()
    {
        var before = TestConfigs.Create("http://a:1");
        var after = before with { AccessLog = new AccessLogConfig("/var/log/lb.log", AccessLogFormat.Combined) };

        Assert.Equal("accessLog.path off -> /var/log/lb.log, accessLog.format json -> combined", ConfigDiff.Describe(before, after));
        Assert.Equal("accessLog.path /var/log/lb.log -> off", ConfigDiff.Describe(after, after with { AccessLog = AccessLogConfig.Off with { Format = AccessLogFormat.Combined } }));
    }
}
