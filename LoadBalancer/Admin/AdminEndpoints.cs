using System.Text.Json;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Admin;

// The admin listener (loopback by default, never the client port):
//   GET /healthz            -> 200 "ok"               the balancer's own liveness
//   GET /status             -> JSON of every backend   a snapshot asked of the state task
//   GET /explain            -> JSON: the next pick's dry run, and why each backend is or is not a candidate
//   GET /events?since=N     -> JSON: the state changes after N (the last 1000 kept)
//   POST /backends/drain    {"url": ...} -> 200, 404 unknown url, 401/403 refused (AdminAuth)
//   POST /backends/undrain  {"url": ...}
//   GET /metrics            -> Prometheus text          OpenTelemetry's exporter (wired in Program.cs)
// Every answer is asked of the state task; the POSTs' permission too (the adminToken in force is its).
public sealed class AdminEndpoints(StateClient state, Microsoft.Extensions.Logging.ILogger<AdminEndpoints> log)
{
    const int MaxBody = 4096;

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.Path.Value is "/backends/drain" or "/backends/undrain")
        {
            await DrainAsync(context, drain: request.Path.Value == "/backends/drain").ConfigureAwait(false);
            return;
        }
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = "GET, HEAD";
            return;
        }
        switch (request.Path.Value)
        {
            case "/explain":
                var explanation = await state.ExplainAsync().ConfigureAwait(false);
                context.Response.ContentType = "application/json; charset=utf-8";
                await WriteExplainAsync(context.Response.Body, explanation).ConfigureAwait(false);
                break;
            case "/events":
                var sinceText = request.Query["since"].ToString();
                long since = 0;
                if (sinceText.Length > 0 && !long.TryParse(sinceText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out since))
                {
                    await PlainAsync(context, StatusCodes.Status400BadRequest, "since must be a whole number (an event's seq; 0 for all)\n").ConfigureAwait(false);
                    break;
                }
                var page = await state.EventsAsync(since).ConfigureAwait(false);
                context.Response.ContentType = "application/json; charset=utf-8";
                await WriteEventsAsync(context.Response.Body, page).ConfigureAwait(false);
                break;
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
                await context.Response.WriteAsync("not found: try /healthz, /status, /explain, /events or /metrics\n").ConfigureAwait(false);
                break;
        }
    }

    async Task DrainAsync(HttpContext context, bool drain)
    {
        var request = context.Request;
        if (!HttpMethods.IsPost(request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = "POST";
            return;
        }
        var peer = context.Connection.RemoteIpAddress;
        var host = request.Headers.Host.ToString();
        if (AdminAuth.FromAnotherSite(request.Headers.Origin.ToString(), request.Headers["Sec-Fetch-Site"].ToString(), host))
        {
            Log.AdminRefused(log, request.Method, request.Path.Value!, peer?.ToString() ?? "?", "sent by a web page of another site");
            await PlainAsync(context, StatusCodes.Status403Forbidden, "forbidden: admin POSTs are not taken from another site's web page\n").ConfigureAwait(false);
            return;
        }
        // Loopback counts only under this machine's own name (see AdminAuth: DNS rebinding).
        var loopback = AdminAuth.IsLoopback(peer) && AdminAuth.LocalHost(host);
        string? url = null;
        var body = await ReadBodyAsync(request).ConfigureAwait(false);
        var tooLarge = body is null;
        var problem = tooLarge ? $"the body is larger than {MaxBody} bytes" : null;
        if (problem is null)
        {
            try
            {
                using var doc = JsonDocument.Parse(body!);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("url", out var u) && u.ValueKind == JsonValueKind.String)
                    url = u.GetString();
                else problem = "the body must be a JSON object with a \"url\" string";
            }
            catch (JsonException)
            {
                problem = "the body is not JSON: send {\"url\": \"http://...\"}";
            }
        }
        // Ask even with a bad body: a refused caller learns only that it is refused.
        var answer = await state.DrainAsync(url ?? "", drain, request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null, loopback)
            .ConfigureAwait(false);
        switch (answer)
        {
            case DrainAnswer.Unauthorized:
                Log.AdminRefused(log, request.Method, request.Path.Value!, peer?.ToString() ?? "?", "no valid bearer token");
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await PlainAsync(context, StatusCodes.Status401Unauthorized, "unauthorized: send Authorization: Bearer <adminToken>\n").ConfigureAwait(false);
                return;
            case DrainAnswer.Forbidden:
                Log.AdminRefused(log, request.Method, request.Path.Value!, peer?.ToString() ?? "?", "not a loopback peer (or not addressed by IP or as localhost) and no adminToken is set");
                await PlainAsync(context, StatusCodes.Status403Forbidden, "forbidden: admin POSTs come from loopback only (addressed by IP or as localhost), unless adminToken is set and sent\n").ConfigureAwait(false);
                return;
        }
        if (problem is not null)
        {
            await PlainAsync(context, tooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest, problem + "\n").ConfigureAwait(false);
            return;
        }
        if (answer == DrainAnswer.UnknownBackend)
        {
            await PlainAsync(context, StatusCodes.Status404NotFound, $"no backend {url}\n").ConfigureAwait(false);
            return;
        }
        context.Response.ContentType = "application/json; charset=utf-8";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("url", url);
        json.WriteBoolean("drained", drain);
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    // The body, or null when it is larger than MaxBody.
    static async Task<byte[]?> ReadBodyAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxBody) return null;
        var buffer = new byte[MaxBody + 1];
        var n = 0;
        while (n < buffer.Length)
        {
            var read = await request.Body.ReadAsync(buffer.AsMemory(n)).ConfigureAwait(false);
            if (read == 0) break;
            n += read;
        }
        return n > MaxBody ? null : buffer[..n];
    }

    static async Task PlainAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(text).ConfigureAwait(false);
    }

    // Rules and reasons are text for people: '+', '<' and non-ASCII stay readable (this is JSON for
    // an API, never pasted into HTML); quotes and control characters are still escaped.
    static readonly JsonWriterOptions Readable = new() { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task WriteExplainAsync(Stream body, Explanation x)
    {
        await using var json = new Utf8JsonWriter(body, Readable);
        json.WriteStartObject();
        json.WriteString("policy", x.Policy);
        json.WriteString("chosen", x.Chosen); // null writes null
        json.WriteString("rule", x.Rule);
        json.WriteStartArray("candidates");
        foreach (var c in x.Candidates)
        {
            json.WriteStartObject();
            json.WriteString("url", c.Url);
            json.WriteString("state", c.State.Label());
            json.WriteBoolean("eligible", c.Eligible);
            json.WriteString("reason", c.Reason);
            json.WriteNumber("weight", c.Weight);
            json.WriteNumber("effectiveWeight", Math.Round(c.EffectiveWeight, 3));
            json.WriteNumber("inFlight", c.InFlight);
            json.WriteNumber("maxInFlight", c.MaxInFlight);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    public static async Task WriteEventsAsync(Stream body, EventsPage page)
    {
        await using var json = new Utf8JsonWriter(body, Readable);
        json.WriteStartObject();
        json.WriteStartArray("events");
        foreach (var e in page.Events) WriteEvent(json, e);
        json.WriteEndArray();
        json.WriteNumber("next", page.Next);
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    /// <summary>One state change as /events shows it (and the replay's --until prints it).</summary>
    public static void WriteEvent(Utf8JsonWriter json, StateChange e)
    {
        json.WriteStartObject();
        json.WriteNumber("seq", e.Seq);
        json.WriteString("at", Timestamp(e.At));
        json.WriteString("backend", e.Backend.Url);
        json.WriteString("from", e.From.Label());
        json.WriteString("to", e.To);
        json.WriteString("reason", e.Reason);
        json.WriteString("rule", e.Why.Rule);
        json.WriteStartArray("evidence");
        foreach (var v in e.Evidence)
        {
            json.WriteStartObject();
            json.WriteString("kind", v.Kind);
            json.WriteString("at", Timestamp(v.At));
            json.WriteString("result", v.Result);
            if (v.Status is { } status) json.WriteNumber("status", status);
            if (v.LatencyMs is { } ms) json.WriteNumber("latencyMs", ms);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
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
            if (b.Address is { } address) json.WriteString("address", address);
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
            if (b.Discovery is { } discovery)
            {
                json.WriteStartObject("discovery");
                json.WriteBoolean("stale", discovery.Stale);
                if (discovery.Error is { } error) json.WriteString("error", error); else json.WriteNull("error");
                json.WriteEndObject();
            }
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
