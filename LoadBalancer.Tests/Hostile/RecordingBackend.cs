using System.Collections.Concurrent;
using System.Text;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoadBalancer.Tests.Hostile;

// A TestBackend that records every request its handler got (all but /healthcheck). The
// well-behaved client's GETs always get the default answer ("backend-<name>"); everything
// else goes to the test's handler, or by default: read the whole body, answer "backend-<name>".
public sealed class RecordingBackend : IAsyncDisposable
{
    readonly ConcurrentQueue<SeenRequest> _seen;

    RecordingBackend(TestBackend backend, ConcurrentQueue<SeenRequest> seen)
    {
        Backend = backend;
        _seen = seen;
    }

    public TestBackend Backend { get; }
    public string Url => Backend.Url;
    public IReadOnlyCollection<SeenRequest> Seen => _seen;

    public static async Task<RecordingBackend> StartAsync(string name, RequestDelegate? handler = null)
    {
        var seen = new ConcurrentQueue<SeenRequest>();
        var backend = await TestBackend.StartAsync(name, handler: context => HandleAsync(context, name, handler, seen));
        return new RecordingBackend(backend, seen);
    }

    static async Task HandleAsync(HttpContext context, string name, RequestDelegate? handler, ConcurrentQueue<SeenRequest> all)
    {
        var request = context.Request;
        var seen = new SeenRequest(name, request.Method, context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget,
            request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase));
        all.Enqueue(seen);
        if (handler is not null && !seen.IsCalm)
        {
            await handler(context);
            return;
        }
        try
        {
            using var reader = new StreamReader(request.Body, Encoding.Latin1);
            seen.Body = await reader.ReadToEndAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or BadHttpRequestException)
        {
            seen.BodyError = $"{e.GetType().Name}: {e.Message}";
            return;
        }
        await context.Response.WriteAsync($"backend-{name}");
    }

    public ValueTask DisposeAsync() => Backend.DisposeAsync();
}
