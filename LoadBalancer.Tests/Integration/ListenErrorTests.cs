using System.Net;
using System.Net.Sockets;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Integration;

// A listener that cannot bind, as the operator meets it: the real dll as a process, its listen
// or admin port held by the test. One line on stderr naming the address, the listener and the
// reason; exit 1 (the environment, not the configuration); nothing logged before it, and no
// probe ever reached the (healthy) backend: probing starts only once every listener is bound.
[Trait("Category", "Process")] // also run on the shipped executable by .ci/run (LB_SHIPPED)
public sealed class ListenErrorTests
{
    [Theory]
    [InlineData("listen")]
    [InlineData("admin")]
    public async Task Start_PortInUse_ExitsOneWithOneLineAndNoProbe(string which)
    {
        await using var backend = await TestBackend.StartAsync("a");
        var held = new TcpListener(IPAddress.Loopback, 0);
        held.Start();
        var dir = Directory.CreateTempSubdirectory("lb-port-in-use-");
        try
        {
            var port = ((IPEndPoint)held.LocalEndpoint).Port;
            var config = Balancer.Config(backend);
            config[which] = $"http://127.0.0.1:{port}";
            config["healthCheck"]!["interval"] = "250ms";
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());

            await using var lb = LbProcess.Start("--config", path);
            var exitCode = await lb.WaitForExitAsync();

            Assert.True(exitCode == 1, $"exit code {exitCode}; stderr: {lb.StandardError}");
            Assert.Equal([$"error: cannot listen on http://127.0.0.1:{port} ({which}): address already in use"], lb.StandardErrorLines);
            Assert.DoesNotContain("is now healthy", lb.StandardOutput);
            Assert.Equal("", lb.StandardOutput); // no stack trace, no log line at all
            Assert.Equal(0, backend.Connections); // not probed
        }
        finally
        {
            held.Stop();
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Start_AddressNotOnThisMachine_ExitsOneWithOneLine()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var dir = Directory.CreateTempSubdirectory("lb-no-address-");
        try
        {
            var config = Balancer.Config(backend);
            config["listen"] = "http://192.0.2.1:8080"; // TEST-NET-1: no machine has it
            var path = Path.Combine(dir.FullName, "lb.json");
            await File.WriteAllTextAsync(path, config.ToJsonString());

            await using var lb = LbProcess.Start("--config", path);
            var exitCode = await lb.WaitForExitAsync();

            Assert.Equal(1, exitCode);
            var line = Assert.Single(lb.StandardErrorLines);
            Assert.StartsWith("error: cannot listen on http://192.0.2.1:8080 (listen): ", line);
            Assert.Equal("", lb.StandardOutput);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    // lb.json is the only configuration. ASP.NET Core's own sources (an appsettings.json in the
    // working directory, ASPNETCORE_* variables) could otherwise add Kestrel endpoints that
    // lb.json never named: a listener the operator did not configure, outside the connection gate.
    [Fact]
    public async Task Start_AppSettingsAndAspNetCoreVariablesNameOtherEndpoints_ListensOnlyWhereLbJsonSays()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var dir = Directory.CreateTempSubdirectory("lb-appsettings-");
        try
        {
            var (fromFile, fromUrls, fromVariable) = (LbProcess.FreePort(), LbProcess.FreePort(), LbProcess.FreePort());
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "appsettings.json"),
                $$"""{ "Kestrel": { "Endpoints": { "Extra": { "Url": "http://127.0.0.1:{{fromFile}}" } } } }""");
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "lb.json"), Balancer.Config(backend).ToJsonString());
            var environment = new Dictionary<string, string>
            {
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{fromUrls}",
                ["ASPNETCORE_Kestrel__Endpoints__Env__Url"] = $"http://127.0.0.1:{fromVariable}",
            };

            await using var lb = LbProcess.StartIn(dir.FullName, environment, "--config", "lb.json");
            await lb.WaitForOutputAsync("listening on");

            foreach (var port in new[] { fromFile, fromUrls, fromVariable })
            {
                using var probe = new TcpClient();
                var refused = await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, port));
                Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
            }
            // ASPNETCORE_URLS only gets Kestrel's own warning that it binds lb.json's addresses instead.
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
