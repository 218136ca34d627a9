using System.Net.Sockets;
using System.Security.Authentication;
using LoadBalancer.Pipeline;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Forwarding;

// Turns what YARP's forwarder reports (the ForwarderError it returns and the exception in
// IForwarderErrorFeature) into the Outcome the state task counts. Types, never message text.
public static class FailureClassifier
{
    public static Outcome Classify(ForwarderError error, Exception? exception, bool clientAborted, int status)
    {
        if (error == ForwarderError.None)
            return status is 502 or 503 or 504 ? Outcome.BadGatewayStatus : Outcome.Response;
        if (clientAborted) return Outcome.ClientAbort;

        return error switch
        {
            // YARP reports SocketsHttpHandler's ConnectTimeout as a timed-out request too; the
            // TimeoutException inside tells it apart from requestTimeout (nothing was sent).
            ForwarderError.RequestTimedOut => HasTimeout(exception) ? Outcome.ConnectTimeout : Outcome.ResponseTimeout,
            ForwarderError.Request or ForwarderError.RequestCreation or ForwarderError.ResponseHeaders
                or ForwarderError.RequestBodyDestination or ForwarderError.UpgradeRequestDestination
                => FromException(exception),
            ForwarderError.ResponseBodyDestination or ForwarderError.UpgradeResponseDestination
                or ForwarderError.UpgradeActivityTimeout => Outcome.ResetAfterHeaders,
            // The client's side failed or cancelled: request/response body from/to the client.
            ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
                or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient
                or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient
                or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient => Outcome.ClientAbort,
            _ => Outcome.ResetBeforeHeaders,
        };
    }

    static Outcome FromException(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError }:
                case AuthenticationException:
                    return Outcome.TlsFailure;
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

    // SocketsHttpHandler reports ConnectTimeout as a ConnectionError caused by a TimeoutException
    // (wrapped in a TaskCanceledException on some paths).
    static bool HasTimeout(Exception? e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is TimeoutException) return true;
        return false;
    }
}
