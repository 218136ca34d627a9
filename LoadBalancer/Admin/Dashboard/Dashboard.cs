using System.Collections.Frozen;
using System.Net;
using System.Text;
using System.Security.Cryptography;
using System.Text.Json;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Admin.Dashboard;

// The admin listener's dashboard (docs/dashboard.md):
//   GET /                 the page (embedded in the binary: no CDN, works air-gapped), its tables
//                         filled with the backends and channels of now
//   GET /dashboard/*      its script, style sheet, icon and the vendored uPlot
//   GET /dashboard/data   one JSON document the page polls once a second
// Everything else goes on to AdminEndpoints. The data is /status (asked of the state task, as
// /status asks), the pipeline's counters (PipelineView) and request-duration buckets
// (DashboardLatency, counted only while the page polls). A strict Content-Security-Policy: the
// page runs only its own files, loads nothing from elsewhere and cannot be framed.
public sealed class Dashboard(StateClient state, PipelineView pipeline, DashboardLatency latency)
{
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    const string ResourcePrefix = "dashboard/";
    static readonly FrozenDictionary<string, Asset> Assets = LoadAssets();


    /// <summary>As middleware: answers its own paths (GET and HEAD), passes everything else on.</summary>
    public Task HandleAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (!HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method)) return next(context);
        var path = request.Path.Value ?? "";
        if (path == "/dashboard/data") return DataAsync(context);
        if (path == "/") return PageAsync(context);
        return Assets.TryGetValue(path, out var asset) ? ServeAsync(context, asset) : next(context);
    }

    static async Task ServeAsync(HttpContext context, Asset asset)
    {
        var response = context.Response;
        Secure(response);
        response.Headers.CacheControl = "no-cache"; // revalidate: a new binary serves new files at once
        response.Headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }
        response.ContentType = asset.ContentType;
        response.ContentLength = asset.Bytes.Length;
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await response.Body.WriteAsync(asset.Bytes).ConfigureAwait(false);
    }

    // The page with the backends and channels as they are now already in its tables, so that it
    // says something before its script has run (or without it); the script then takes over.
    async Task PageAsync(HttpContext context)
    {
        var snapshot = await state.StatusAsync().ConfigureAwait(false);
        var html = new StringBuilder(Encoding.UTF8.GetString(Assets["/"].Bytes));
        var rows = new StringBuilder();
        foreach (var b in snapshot.Backends)
        {
            var (url, label) = (WebUtility.HtmlEncode(b.Url), b.State.Label());
            rows.Append($"<tr data-backend=\"{url}\"><td class=\"url\" data-label=\"backend\"><div class=\"cell\">{url}</div></td>")
                .Append($"<td data-label=\"state\"><div class=\"cell\"><span class=\"state state-{label}\">{label}</span>")
                .Append($"<div class=\"reason\">{WebUtility.HtmlEncode(b.LastChange?.Reason ?? "")}</div></div></td></tr>\n");
        }
        html.Replace(EmptyBackendRows, EmptyBackendRows[..^"</tbody>".Length] + rows + "</tbody>");
        var channels = new StringBuilder();
        foreach (var c in pipeline.Channels())
            channels.Append($"<tr data-channel=\"{c.Name}\"><td class=\"mono\">{c.Name}</td><td>{c.From ?? "many"} → {c.To}</td>")
                .Append($"<td class=\"num\">-</td><td class=\"num\">{c.Count} / {c.Capacity}</td></tr>\n");
        html.Replace(EmptyChannelRows, EmptyChannelRows[..^"</tbody>".Length] + channels + "</tbody>");
        var bytes = Encoding.UTF8.GetBytes(html.ToString());

        var response = context.Response;
        Secure(response);
        response.Headers.CacheControl = "no-store"; // it shows the state of now
        response.ContentType = "text/html; charset=utf-8";
        response.ContentLength = bytes.Length;
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await response.Body.WriteAsync(bytes).ConfigureAwait(false);
    }

    const string EmptyBackendRows = "<tbody id=\"backend-rows\"></tbody>";
    const string EmptyChannelRows = "<tbody id=\"channel-rows\"></tbody>";

    async Task DataAsync(HttpContext context)
    {
        latency.Touch(); // someone looks: count request durations for the next IdleAfter
        var snapshot = await state.StatusAsync().ConfigureAwait(false);

        using var status = new MemoryStream();
        await AdminEndpoints.WriteStatusAsync(status, snapshot).ConfigureAwait(false);

        var response = context.Response;
        Secure(response);
        response.Headers.CacheControl = "no-store";
        response.ContentType = "application/json; charset=utf-8";
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await using var json = new Utf8JsonWriter(response.Body);
        json.WriteStartObject();
        json.WriteStartObject("features");
        // What the page may offer: /events and the drain POSTs (AdminEndpoints, always served).
        json.WriteBoolean("events", true);
        json.WriteBoolean("drain", true);
        json.WriteEndObject();
        json.WritePropertyName("status");
        json.WriteRawValue(status.GetBuffer().AsSpan(0, (int)status.Length), skipInputValidation: true);
        pipeline.Write(json);
        json.WriteStartObject("latency");
        json.WriteBoolean("counting", latency.On);
        json.WriteStartArray("boundsMs");
        foreach (var b in DashboardLatency.BoundsMs) json.WriteNumberValue(b);
        json.WriteEndArray();
        json.WriteStartArray("backends");
        foreach (var (backend, counts) in latency.Snapshot())
        {
            json.WriteStartObject();
            json.WriteString("backend", backend);
            json.WriteStartArray("counts");
            foreach (var c in counts) json.WriteNumberValue(c);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
        await json.FlushAsync().ConfigureAwait(false);
    }

    static void Secure(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.XFrameOptions = "DENY";
        response.Headers["Referrer-Policy"] = "no-referrer";
    }

    sealed record Asset(byte[] Bytes, string ContentType, string ETag);

    // Embedded by the csproj as dashboard/<path>: index.html is "/", the rest "/dashboard/<path>".
    static FrozenDictionary<string, Asset> LoadAssets()
    {
        var assembly = typeof(Dashboard).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            var file = name[ResourcePrefix.Length..];
            var etag = $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}\"";
            assets[file == "index.html" ? "/" : "/dashboard/" + file] = new Asset(bytes, ContentType(file), etag);
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    static string ContentType(string file) => Path.GetExtension(file) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "text/plain; charset=utf-8", // licence and version notes
    };
}
