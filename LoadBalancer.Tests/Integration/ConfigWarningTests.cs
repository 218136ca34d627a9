using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// A key the balancer does not know, as the user meets it: the real dll as a process starts and
// serves (an unknown key is not an error), and says which key it ignored, with the key it
// probably meant.
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class ConfigWarningTests
{
    [Fact]
    public async Task Start_MisspeltKey_StartsAndWarnsWithTheKeyItProbablyMeant()
    {
        var dir = Directory.CreateTempSubdirectory("lb-warn-config-");
        try
        {
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, """
                {
                  "listen": "http://127.0.0.1:0",
                  "admin": "http://127.0.0.1:0",
                  "backends": [ { "url": "http://127.0.0.1:9" } ],
                  "healthCheck": { "intervall": "5s" }
                }
                """);

            await using var lb = LbProcess.Start("--config", path);

            var warning = await lb.WaitForOutputAsync("unknown key");
            Assert.Contains($"{path}: healthCheck.intervall: unknown key, ignored (did you mean healthCheck.interval?)", warning);
            await lb.WaitForOutputAsync("LoadBalancer listening on");
            Assert.False(lb.HasExited);
            Assert.Equal("", lb.StandardError);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
