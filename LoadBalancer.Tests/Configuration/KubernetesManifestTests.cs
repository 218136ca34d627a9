using System.Text;
using System.Text.RegularExpressions;
using LoadBalancer.Configuration;
using LoadBalancer.Tests.Walkthrough;

namespace LoadBalancer.Tests.Configuration;

// deploy/kubernetes/ stays usable: the ConfigMap's lb.json loads with the real ConfigLoader
// (strict: no unknown key), the probes hit the admin listener's /healthz on its port, and the
// discovered host is the headless Service. A tiny parse: the block scalar under "lb.json: |".
public sealed partial class KubernetesManifestTests
{
    static readonly string Dir = Path.Combine(DocsLinksTests.RepoRoot(), "deploy", "kubernetes");

    static string EmbeddedLbJson()
    {
        var lines = File.ReadAllLines(Path.Combine(Dir, "configmap.yaml"));
        var start = Array.FindIndex(lines, l => l.Trim() == "lb.json: |");
        Assert.True(start >= 0, "configmap.yaml has no lb.json: | block");
        var indent = lines[start + 1].Length - lines[start + 1].TrimStart().Length;
        var block = lines.Skip(start + 1).TakeWhile(l => l.Length == 0 || l.Length - l.TrimStart().Length >= indent);
        return string.Join("\n", block.Select(l => l.Length >= indent ? l[indent..] : l));
    }

    [Fact]
    public void ConfigMap_LbJson_LoadsWithTheRealLoaderStrict()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes(EmbeddedLbJson()), "configmap.yaml", strict: true);
        Assert.Equal(BalancingNames.ConsistentHash, config.Balancing);
        Assert.NotNull(config.Affinity?.Secret);
        var discovered = Assert.Single(config.Backends, b => b.Discover);

        var services = File.ReadAllText(Path.Combine(Dir, "service.yaml"));
        var headless = services.Split("\n---").SingleOrDefault(d => d.Contains("clusterIP: None", StringComparison.Ordinal));
        Assert.True(headless is not null, "service.yaml has no Service with clusterIP: None");
        Assert.StartsWith(Name().Match(headless).Groups[1].Value + ".", discovered.Uri.Host);
    }

    [Fact]
    public void Deployment_ProbesHitTheAdminHealthzAndTheConfigIsADirectoryMount()
    {
        var config = ConfigLoader.Parse(Encoding.UTF8.GetBytes(EmbeddedLbJson()), "configmap.yaml");
        var deployment = File.ReadAllText(Path.Combine(Dir, "deployment.yaml"));
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            var m = Regex.Match(deployment, probe + @":\s+httpGet:\s+path: (\S+)\s+port: (\d+)");
            Assert.True(m.Success, $"{probe} is not an httpGet");
            Assert.Equal("/healthz", m.Groups[1].Value);
            Assert.Equal(config.Admin.Port.ToString(), m.Groups[2].Value);
        }
        Assert.Equal("0.0.0.0", config.Admin.Host); // reachable by the kubelet: the manifest says why
        Assert.Contains("args: [\"--config\", \"/etc/lb/lb.json\"]", deployment);
        Assert.Contains("mountPath: /etc/lb", deployment);
        Assert.DoesNotContain("subPath", deployment); // a subPath mount never sees the ConfigMap's updates
    }

    [GeneratedRegex(@"metadata:\s+name: (\S+)")]
    private static partial Regex Name();
}
