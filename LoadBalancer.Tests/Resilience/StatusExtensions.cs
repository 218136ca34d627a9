using System.Text.Json;
using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests.Resilience;

// Reading one backend out of /status, as an operator would.
static class StatusExtensions
{
    /// <summary>The /status entry of this backend, or null when /status does not list it.</summary>
    public static async Task<JsonElement?> BackendStatusAsync(this Balancer lb, TestBackend backend)
    {
        var status = await lb.StatusAsync();
        foreach (var b in status.GetProperty("backends").EnumerateArray())
            if (b.GetProperty("url").GetString() == backend.Url) return b;
        return null;
    }

    public static async Task<JsonElement> RequiredStatusAsync(this Balancer lb, TestBackend backend) =>
        await lb.BackendStatusAsync(backend) ?? throw new InvalidOperationException($"{backend.Url} is not in /status");

    /// <summary>Asks /status until the backend's entry satisfies the condition (outcomes reach the
    /// state task a moment after the client has its answer). Each ask is a real round trip.</summary>
    public static async Task<JsonElement> WaitForStatusAsync(this Balancer lb, TestBackend backend, Func<JsonElement, bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var entry = await lb.RequiredStatusAsync(backend);
            if (condition(entry)) return entry;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"/status never satisfied the condition; last: {entry}");
            await Task.Yield();
        }
    }

    public static string State(this JsonElement backend) => backend.GetProperty("state").GetString()!;
    public static int InFlight(this JsonElement backend) => backend.GetProperty("inFlight").GetInt32();
    public static long Requests(this JsonElement backend) => backend.GetProperty("requests").GetInt64();
    public static long Failures(this JsonElement backend) => backend.GetProperty("failures").GetInt64();

    /// <summary>"Backend http://127.0.0.1:1234 is now ejected", exact to the port.</summary>
    public static string Now(this TestBackend backend, string state) => $"Backend {backend.Url} is now {state}";
}
