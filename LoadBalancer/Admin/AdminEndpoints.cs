using System.Text.Json;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Admin;

// The admin listener (loopback by default, never the client port):
//   GET /healthz  -> 200 "ok"                  the balancer's own liveness
//   GET /status   -> JSON of every backend      a snapshot asked of the state task
//   GET /metrics  -> Prometheus text            OpenTelemetry's exporter (wired in Program.cs)
public sealed class AdminEndpoints(StateClient state)
{
    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = "GET, HEAD";
            return;
        }
        switch (request.Path.Value)
        {
            case "/healthz":
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("ok").ConfigureAwait(false);
                break;
            case "/status":
                var snapshot = await state.StatusAsync().ConfigureAwait(false);
                context.Response.ContentType = "application/json; charset=utf-8";
                await WriteStatusAsync(context.Response.Body, snapshot).ConfigureAwait(false);
                break;
            default:
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                context.Response.ContentType = "text/plain; charset=utf-8";
                await context.Response.WriteAsync("not found: try /healthz, /status or /metrics\n").ConfigureAwait(false);
                break;
        }
    }

    public static async Task WriteStatusAsync(Stream body, StatusSnapshot s)
    {
        await using var json = new Utf8JsonWriter(body, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("balancing", s.Balancing);
        json.WriteStartArray("backends");
        foreach (var b in s.Backends)
        {
            json.WriteStartObject();
            json.WriteString("url", b.Url);
            json.WriteNumber("weight", b.Weight);
            json.WriteNumber("effectiveWeight", Math.Round(b.EffectiveWeight, 3));
            json.WriteNumber("maxInFlight", b.MaxInFlight);
            json.WriteString("state", b.State.Label());
            if (b.LastChange is { } change) json.WriteString("stateReason", change.Reason); else json.WriteNull("stateReason");
            if (b.EjectedUntil is { } until) json.WriteString("ejectedUntil", Timestamp(until)); else json.WriteNull("ejectedUntil");
            json.WriteNumber("inFlight", b.InFlight);
            json.WriteNumber("requests", b.Requests);
            json.WriteNumber("failures", b.Failures);
            if (b.LastProbe is { } p)
            {
                json.WriteStartObject("lastProbe");
                json.WriteString("at", Timestamp(p.At));
                if (p.Status is { } code) json.WriteNumber("status", code); else json.WriteNull("status");
                json.WriteNumber("latencyMs", Math.Round(p.Latency.TotalMilliseconds, 3));
                if (p.Error is { } error) json.WriteString("error", error); else json.WriteNull("error");
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("lastProbe");
            }
            json.WriteStartObject("connections");
            json.WriteNumber("open", b.OpenConnections);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartObject("queue");
        json.WriteNumber("length", s.QueueLength);
        json.WriteEndObject();
        json.WriteStartObject("config");
        json.WriteString("loadedAt", Timestamp(s.Config.LoadedAt));
        json.WriteNumber("generation", s.Config.Generation);
        if (s.Config.LastError is { } lastError) json.WriteString("lastError", lastError); else json.WriteNull("lastError");
        json.WriteEndObject();
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    // ISO 8601, UTC, milliseconds: "2026-11-25T12:00:00.000Z".
    static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
}
