using System.Net.Sockets;
using System.Security.Authentication;
using LoadBalancer.Pipeline;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Forwarding;

// Turns what YARP's forwarder reports (the ForwarderError it returns and the exception in
// IForwarderErrorFeature) into the Outcome the state task counts. Types, never message text.
//
// The rule (contract, "What counts against a backend"): only the backend's own behaviour counts
// against it. So every ForwarderError is placed on one side, backend, client or balancer, and
// anything the client did (went away, stalled its upload, idled a stream) or that the balancer
// refused to build is never a backend failure. The switch over ForwarderError has no default
// arm: a value YARP adds later fails the build here instead of silently counting as a reset.
public static class FailureClassifier
{
    /// <summary>What the handler knows about the attempt besides YARP's report.</summary>
    /// <param name="ClientAborted">The client went away (HttpContext.RequestAborted).</param>
    /// <param name="HeaderDeadlinePassed">requestTimeout ran out before response headers.</param>
    /// <param name="RequestBodyIncomplete">The client had not sent its whole request body yet.</param>
    public readonly record struct Facts(bool ClientAborted = false, bool HeaderDeadlinePassed = false, bool RequestBodyIncomplete = false);

    public static Outcome Classify(ForwarderError error, Exception? exception, Facts facts, int status)
    {
        if (error == ForwarderError.None)
            return status is 502 or 503 or 504 ? Outcome.BadGatewayStatus : Outcome.Response;
        // Reading the backend's response body failed. A client that goes away cancels YARP's copy
        // (ResponseBodyCanceled), so this is never the client's doing, and YARP aborts the client
        // connection itself right after it: RequestAborted may already be set when we look, so
        // this is decided before that flag. A cancellation inside is YARP's activity timeout
        // (streamIdleTimeout: YARP blames the side it was reading from); anything else, a reset.
        if (error == ForwarderError.ResponseBodyDestination) return BrokenResponseBody(exception);
        if (facts.ClientAborted) return Outcome.ClientAbort;
        // Our own deadline (requestTimeout) cancelled the attempt before response headers. YARP
        // reports that as RequestCanceled or RequestBodyCanceled (a token it was given).
        if (facts.HeaderDeadlinePassed && error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestTimedOut)
            return facts.RequestBodyIncomplete ? Outcome.ClientStall : Outcome.ResponseTimeout;

#pragma warning disable CS8524 // only values outside the enum reach the throw below
        return error switch
#pragma warning restore CS8524
        {
            ForwarderError.None => Outcome.Response, // handled above
            // YARP's ActivityTimeout (streamIdleTimeout) before headers, or SocketsHttpHandler's
            // ConnectTimeout, which YARP reports as a timed-out request too: the TimeoutException
            // inside tells it apart (nothing was sent). A stalled upload is the client's doing
            // (YARP itself reports a client that stops sending as RequestBodyClient).
            ForwarderError.RequestTimedOut => HasTimeout(exception) ? Outcome.ConnectTimeout
                : facts.RequestBodyIncomplete ? Outcome.ClientStall : Outcome.ResponseTimeout,
            // Backend: sending to it or reading its response headers failed.
            ForwarderError.Request or ForwarderError.ResponseHeaders
                or ForwarderError.RequestBodyDestination or ForwarderError.UpgradeRequestDestination
                => FromException(exception),
            // Backend: it broke the connection while the response body or tunnel was streaming.
            ForwarderError.ResponseBodyDestination => BrokenResponseBody(exception), // decided above
            ForwarderError.UpgradeResponseDestination => Outcome.ResetAfterHeaders,
            // Neither: a WebSocket or other tunnel idle for tunnelIdleTimeout (YARP says so itself).
            ForwarderError.UpgradeActivityTimeout => Outcome.TunnelIdle,
            // Client: it failed or went away on its side (request body from it, response to it);
            // the *Canceled values are YARP's copy cancelled through the client's RequestAborted.
            ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
                or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient
                or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient
                or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient => Outcome.ClientAbort,
            // Balancer: the request could not be built (a method or target the forwarder refuses);
            // nothing reached any backend. NoAvailableDestinations is YARP's routing layer's,
            // which we do not use; it would mean the same.
            ForwarderError.RequestCreation or ForwarderError.NoAvailableDestinations => Outcome.NotForwarded,
        };
    }

    /// <summary>Whose doing a ForwarderError is when nothing else is known (for the docs and the
    /// per-value test): the side of the outcome it classifies to with no exception.</summary>
    public static Side SideOf(ForwarderError error) => Classify(error, null, default, 200).Side();

    static Outcome FromException(Exception? e)
    {
        // TLS first, anywhere in the chain: a handshake in the pool's ConnectCallback (BackendTls)
        // fails as a connection error wrapping the AuthenticationException.
        for (var x = e; x is not null; x = x.InnerException)
            if (x is AuthenticationException or HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError })
                return Outcome.TlsFailure;
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError } h:
                    return HasTimeout(h.InnerException) ? Outcome.ConnectTimeout : Outcome.ConnectRefused;
                case SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostNotFound }:
                    return Outcome.ConnectRefused;
                case TimeoutException:
                    return Outcome.ConnectTimeout;
            }
        }
        return Outcome.ResetBeforeHeaders;
    }

    static Outcome BrokenResponseBody(Exception? e) => HasCancellation(e) ? Outcome.StreamIdle : Outcome.ResetAfterHeaders;

    static bool HasCancellation(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is OperationCanceledException) return true;
        return false;
    }

    // SocketsHttpHandler reports ConnectTimeout as a ConnectionError caused by a TimeoutException
    // (wrapped in a TaskCanceledException on some paths).
    static bool HasTimeout(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is TimeoutException) return true;
        return false;
    }
}
