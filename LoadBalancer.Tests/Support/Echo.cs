using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoadBalancer.Tests.Support;

// A TestBackend handler that answers with what it received, as JSON, so a test sees the
// request exactly as the backend saw it. Each header maps to its values: a header sent as
// several lines has several values, one line has one.
public static class Echo
{
    public static readonly RequestDelegate Handler = async context =>
    {
        var request = context.Request;
        using var reader = new StreamReader(request.Body);
        var seen = new EchoedRequest(
            request.Method,
            context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget,
            request.Headers.ToDictionary(h => h.Key, h => h.Value.Select(v => v ?? "").ToArray(), StringComparer.OrdinalIgnoreCase),
            await reader.ReadToEndAsync());
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(JsonSerializer.Serialize(seen));
    };

    public static EchoedRequest Parse(string json) =>
        JsonSerializer.Deserialize<EchoedRequest>(json)!;

    public sealed record EchoedRequest(string Method, string Target, Dictionary<string, string[]> Headers, string Body)
    {
        /// <summary>The header's lines as the backend got them (empty when it did not get it).</summary>
        public string[] Lines(string name) =>
            Headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value ?? [];

        public bool Has(string name) => Lines(name).Length > 0;
    }
}
