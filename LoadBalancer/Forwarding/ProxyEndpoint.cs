using System.Diagnostics;
using LoadBalancer.Admin;
using LoadBalancer.Pipeline;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Forwarding;

// The request handler: not a stage but one call per request, on Kestrel's threads. First, a request that
// must reach no backend (RequestScreen) is answered here. Then, for each attempt:
// ask the state task for a backend, forward with YARP's IHttpForwarder through that backend's
// pool, and tell the state task how it went (which also releases the in-flight slot). The state
// task may make the ask wait (every backend at its limit: the queue) or refuse it (queue full or
// timed out: 503; a retry over the retry budget: the last attempt's 502/504).
// Retries only what the contract allows, each on a backend not tried yet:
//   - nothing was sent (connect refused or timed out, TLS failed): any method;
//   - reset, malformed or timed out before response headers: GET/HEAD/OPTIONS without a body.
// A response from a backend, whatever its status, is passed through and never retried.
// Each way out records the request's duration (Done): by the backend that answered, or "none",
// and, while the access log is on, hands its record (every attempt, who ended it) to the writer.
// Every request has an X-Request-Id (the client's or a new one): the backend gets it, the
// response carries it, and so do the access log and this handler's log lines.
// The pick gets the request's hash key and affinity cookie (RequestKeys); a pick that names a new
// affinity backend has its cookie set on the backend's response.
public sealed class ProxyEndpoint(StateClient state, IHttpForwarder forwarder, LbMetrics metrics, AccessLog accessLog, ILogger<ProxyEndpoint> log,
    RequestKeys? keys = null)
{
    public async Task HandleAsync(HttpContext context)
    {
        var start = Stopwatch.GetTimestamp();
        var requestId = RequestId.Assign(context);
        var record = accessLog.On ? AccessRecordBuilder.Begin(context, requestId) : null; // off: nothing built
        // Requests that must reach no backend are answered here, before any backend is asked for.
        if (RequestScreen.Check(context) is { } refusal)
        {
            // close: nothing more is read from this connection (a body, a request hidden in one)
            await WriteErrorAsync(context, refusal.Status, refusal.Text, close: true).ConfigureAwait(false);
            Done(context, start, answeredBy: null, Termination.Ok, record);
            return;
        }
        var body = RequestBodyWatch.Install(context);
        var upgrade = context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true;
        var rules = keys?.Current ?? RequestKeys.Rules.None;
        var key = rules.Read(context);
        var setCookie = rules.Cookie is null ? null : RequestKeys.PendingCookie.On(context.Response);

        BackendRoute[]? tried = null;
        var last = Outcome.Response;
        while (true)
        {
            Pick pick;
            try
            {
                pick = await state.PickAsync(tried, context.RequestAborted, key).ConfigureAwait(false);
            }
            catch (Exception e) when (e is System.Threading.Channels.ChannelClosedException or OperationCanceledException)
            {
                await WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "shutting down").ConfigureAwait(false);
                Done(context, start, answeredBy: null, Termination.NoBackend, record);
                return;
            }
            record?.Queued(pick.Waited);
            if (pick.Backend is not { } backend)
            {
                await RefuseAsync(context, pick.Refused, tried, last).ConfigureAwait(false);
                Done(context, start, answeredBy: null, Ended(pick.Refused, tried, last), record);
                return;
            }

            var outcome = Outcome.ClientAbort;
            if (setCookie is not null) setCookie.Value = pick.SetAffinity is { } token ? rules.SetCookie(token) : null;
            record?.AttemptStarting();
            try
            {
                outcome = await ForwardAsync(context, backend, pick.Settings, body, upgrade, requestId).ConfigureAwait(false);
            }
            finally
            {
                record?.AttemptEnded(backend, outcome);
                // Always: an in-flight slot must never leak, whatever went wrong above.
                await state.TellOutcomeAsync(new RequestOutcome(backend, outcome,
                    outcome.HasResponse() ? context.Response.StatusCode : 0)).ConfigureAwait(false);
            }
            if (setCookie is not null && !outcome.HasResponse() && !context.Response.HasStarted) setCookie.Value = null; // our own answer follows

            switch (outcome)
            {
                case Outcome.NotForwarded:
                    await WriteErrorAsync(context, StatusCodes.Status400BadRequest, "this request cannot be forwarded").ConfigureAwait(false);
                    Done(context, start, answeredBy: null, Termination.Ok, record);
                    return;
                case Outcome.ClientStall:
                    await WriteErrorAsync(context, StatusCodes.Status408RequestTimeout, "request body not received in time", close: true).ConfigureAwait(false);
                    Done(context, start, answeredBy: null, Termination.Client, record);
                    return;
            }
            if (outcome.HasResponse() || outcome.Side() == Side.Client || outcome == Outcome.ResetAfterHeaders
                || context.Response.HasStarted)
            {
                Done(context, start, backend, AccessRecordBuilder.EndedBy(outcome), record);
                return;
            }

            last = outcome;
            tried = tried is null ? [backend] : [.. tried, backend];
            if (tried.Length > pick.Settings.Retries || !CanRetry(context.Request, outcome))
            {
                await WriteFailureAsync(context, outcome, tried.Length).ConfigureAwait(false);
                Done(context, start, answeredBy: null, AccessRecordBuilder.EndedBy(outcome), record);
                return;
            }
            // Nothing reached the client: forget this attempt and send the request again.
            context.Features.Set<IForwarderErrorFeature>(null);
            context.Response.Clear();
        }
    }

    // One attempt: forward through the backend's pool, with requestTimeout as a deadline for the
    // response headers and YARP's activity timeout for the gaps after them.
    async Task<Outcome> ForwardAsync(HttpContext context, BackendRoute backend, ForwardingSettings settings, RequestBodyWatch? body, bool upgrade,
        string requestId)
    {
        using var deadline = new HeaderDeadline(settings.RequestTimeout);
        context.Features.Set(deadline);
        if (body is null) deadline.Arm();
        else body.StartsWhenComplete(deadline);
        try
        {
            var error = await forwarder.SendAsync(context, backend.Destination, backend.Client,
                settings.For(backend.Protocol, upgrade), ForwardedHeaders.Instance, deadline.Token).ConfigureAwait(false);
            var exception = error == ForwarderError.None ? null : context.Features.Get<IForwarderErrorFeature>()?.Exception;
            var facts = new FailureClassifier.Facts(context.RequestAborted.IsCancellationRequested, deadline.Passed, body is { Complete: false });
            var outcome = FailureClassifier.Classify(error, exception, facts, context.Response.StatusCode);
            if (outcome == Outcome.Response && GrpcErrors.BackendUnavailable(context)) outcome = Outcome.BadGatewayStatus; // gRPC's 503
            if (outcome is Outcome.StreamIdle or Outcome.TunnelIdle)
                Log.RequestIdleClosed(log, backend.Url, outcome.Describe(), context.Request.Path.Value ?? "/", requestId);
            else if (error != ForwarderError.None)
                Log.RequestForwardFailed(log, backend.Url, outcome.Describe(), error, exception?.Message, requestId);
            return outcome;
        }
        finally
        {
            context.Features.Set<HeaderDeadline>(null);
        }
    }

    // The request's end as the client sees it: the whole response has been handed to Kestrel.
    // A client that left before any response got none: nginx's 499 (YARP leaves a 502 there,
    // which would put the client's doing into a 5xx alert), and it ended the request.
    void Done(HttpContext context, long start, BackendRoute? answeredBy, Termination end, AccessRecordBuilder? record)
    {
        var left = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted;
        var status = left ? ClientClosedRequest : context.Response.StatusCode;
        var elapsed = Stopwatch.GetElapsedTime(start);
        metrics.Request(answeredBy?.Url, status, elapsed, answeredBy?.Address);
        if (GrpcErrors.IsGrpc(context.Request)) metrics.GrpcCall(answeredBy?.Url, GrpcErrors.FinalStatus(context), answeredBy?.Address);
        if (record is not null) accessLog.Write(record.Finish(context, status, answeredBy, left ? Termination.Client : end, elapsed));
    }

    const int ClientClosedRequest = 499;

    // The state task gave no backend (Refusal says why). A refused retry ends the request as if
    // no retries were left: the last attempt's 502/504.
    static Task RefuseAsync(HttpContext context, Refusal why, BackendRoute[]? tried, Outcome last) => why switch
    {
        Refusal.QueueFull => WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "queue full", retryAfter: "1"),
        Refusal.QueueTimeout => WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "queue timeout", retryAfter: "1"),
        Refusal.Cancelled => Task.CompletedTask, // the client has gone: nobody to answer
        Refusal.Stopping => WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "shutting down"),
        _ when tried is not null => WriteFailureAsync(context, last, tried.Length),
        _ => WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "no healthy backends", retryAfter: "1"),
    };

    static Termination Ended(Refusal why, BackendRoute[]? tried, Outcome last) => why switch
    {
        Refusal.QueueFull or Refusal.QueueTimeout => Termination.Queue,
        Refusal.Budget => Termination.Budget,
        Refusal.Cancelled => Termination.Client,
        _ when tried is not null => AccessRecordBuilder.EndedBy(last),
        _ => Termination.NoBackend,
    };

    static bool CanRetry(HttpRequest request, Outcome outcome) =>
        outcome.NothingSent()
        || (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method))
           && request.ContentLength is null or 0 && !request.Headers.ContainsKey("Transfer-Encoding");

    static Task WriteFailureAsync(HttpContext context, Outcome last, int attempts)
    {
        var timedOut = last is Outcome.ResponseTimeout or Outcome.ConnectTimeout;
        var what = attempts == 1 ? "the backend attempt" : $"all {attempts} backend attempts";
        return timedOut
            ? WriteErrorAsync(context, StatusCodes.Status504GatewayTimeout, $"gateway timeout: {what} failed, the last with {last.Describe()}")
            : WriteErrorAsync(context, StatusCodes.Status502BadGateway, $"bad gateway: {what} failed, the last with {last.Describe()}");
    }

    static Task WriteErrorAsync(HttpContext context, int status, string text, string? retryAfter = null, bool close = false)
    {
        if (context.Response.HasStarted) return Task.CompletedTask;
        if (GrpcErrors.IsGrpc(context.Request)) return GrpcErrors.WriteAsync(context, status, text, retryAfter, close); // a gRPC client reads grpc-status
        context.Response.Clear();
        RequestId.Echo(context);
        context.Response.StatusCode = status;
        if (retryAfter is not null) context.Response.Headers.RetryAfter = retryAfter;
        if (close) context.Response.Headers.Connection = "close"; // Kestrel closes after this response
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text + "\n");
    }
}
