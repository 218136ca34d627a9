using System.Diagnostics;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoadBalancer.Forwarding;

// One request's access-log record in the making, created by the handler only while the log is on.
// It notes when the request started, counts the response body (ResponseBodyCounter), times each
// attempt, and at the end turns all that into one immutable AccessRecord for the writer stage.
// Everything that costs more than a field read (formatting the address, the time, the JSON)
// is left to the writer, off the request path.
public sealed class AccessRecordBuilder
{
    readonly DateTimeOffset _time = DateTimeOffset.UtcNow;
    readonly string _requestId;
    readonly ResponseBodyCounter _out;
    AttemptRecord[] _attempts = [];
    long _attemptStart;
    TimeSpan _queued;

    AccessRecordBuilder(HttpContext context, string requestId)
    {
        _requestId = requestId;
        _out = ResponseBodyCounter.Install(context.Features);
    }

    public static AccessRecordBuilder Begin(HttpContext context, string requestId) => new(context, requestId);

    public void AttemptStarting() => _attemptStart = Stopwatch.GetTimestamp();

    /// <summary>A pick waited this long in the admission queue (summed over the request's picks).</summary>
    public void Queued(TimeSpan waited) => _queued += waited;

    public void AttemptEnded(BackendRoute backend, Outcome outcome) =>
        // Retries are rare: a new array per attempt costs less than a list for every request.
        _attempts = [.. _attempts, new AttemptRecord(backend.Url, outcome, Stopwatch.GetElapsedTime(_attemptStart).TotalMilliseconds)];

    /// <param name="status">What the client got (499: it left before any response).</param>
    /// <param name="backend">Whose response the client got; null when the balancer answered.</param>
    public AccessRecord Finish(HttpContext context, int status, BackendRoute? backend, Termination termination, TimeSpan elapsed)
    {
        var request = context.Request;
        var target = context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw
            ? raw : request.Path.Value + request.QueryString.Value;
        return new AccessRecord(_time, context.Connection.RemoteIpAddress, request.Method, target, request.Protocol, status,
            (request.Body as RequestBodyWatch)?.BytesRead ?? 0, _out.Bytes, elapsed.TotalMilliseconds, _requestId, backend?.Url,
            _attempts, QueueMs: _queued.TotalMilliseconds, termination, Header(request.Headers.Referer), Header(request.Headers.UserAgent));
    }

    static string? Header(Microsoft.Extensions.Primitives.StringValues values) => values.Count == 0 ? null : values.ToString();

    /// <summary>Who ended a request whose last attempt ended so (Response: it ran its course).
    /// Exhaustive: a new Outcome does not compile until it is placed here too.</summary>
#pragma warning disable CS8524 // only values outside the enum fall through
    public static Termination EndedBy(Outcome outcome) => outcome switch
    {
        Outcome.Response or Outcome.BadGatewayStatus or Outcome.NotForwarded => Termination.Ok,
        Outcome.ConnectTimeout or Outcome.ResponseTimeout or Outcome.StreamIdle or Outcome.TunnelIdle => Termination.Timeout,
        Outcome.ConnectRefused or Outcome.TlsFailure or Outcome.ResetBeforeHeaders or Outcome.ResetAfterHeaders => Termination.Backend,
        Outcome.ClientAbort or Outcome.ClientStall => Termination.Client,
    };
#pragma warning restore CS8524
}
