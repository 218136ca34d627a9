using System.Net.Sockets;
using System.Security.Authentication;
using LoadBalancer.Forwarding;
using LoadBalancer.Pipeline;
using Yarp.ReverseProxy.Forwarder;

namespace LoadBalancer.Tests.Forwarding;

// What YARP reports (its ForwarderError and the exception in IForwarderErrorFeature), as
// SocketsHttpHandler shapes those exceptions, mapped to the Outcome that passive health counts.
public sealed class FailureClassifierTests
{
    static Outcome Classify(ForwarderError error, Exception? exception, bool clientAborted = false, int status = 0) =>
        FailureClassifier.Classify(error, exception, clientAborted, status);

    static HttpRequestException Http(HttpRequestError error, Exception? inner = null) => new(error, "send failed", inner);

    static SocketException Socket(SocketError error) => new((int)error);

    public static TheoryData<string, ForwarderError, Exception?, Outcome> Failures => new()
    {
        // Nothing reached the backend.
        { "refused, as SocketsHttpHandler reports it", ForwarderError.Request,
            Http(HttpRequestError.ConnectionError, Socket(SocketError.ConnectionRefused)), Outcome.ConnectRefused },
        { "connection error, no inner", ForwarderError.Request, Http(HttpRequestError.ConnectionError), Outcome.ConnectRefused },
        { "refused socket, unknown error code", ForwarderError.Request,
            new HttpRequestException("x", Socket(SocketError.ConnectionRefused)), Outcome.ConnectRefused },
        { "host unreachable", ForwarderError.Request, new HttpRequestException("x", Socket(SocketError.HostUnreachable)), Outcome.ConnectRefused },
        { "name not resolved", ForwarderError.Request, Http(HttpRequestError.NameResolutionError, Socket(SocketError.HostNotFound)), Outcome.ConnectRefused },
        { "connect timeout inside a connection error", ForwarderError.Request,
            Http(HttpRequestError.ConnectionError, new TaskCanceledException("x", new TimeoutException())), Outcome.ConnectTimeout },
        { "TLS failure", ForwarderError.Request, Http(HttpRequestError.SecureConnectionError), Outcome.TlsFailure },
        { "TLS failure, authentication exception inside", ForwarderError.Request,
            new HttpRequestException("x", new AuthenticationException()), Outcome.TlsFailure },
        // Timed out: a TimeoutException inside means the connect did (pool.connectTimeout).
        { "connect timed out", ForwarderError.RequestTimedOut,
            new TaskCanceledException("x", new TimeoutException()), Outcome.ConnectTimeout },
        { "no response headers in time", ForwarderError.RequestTimedOut, new TaskCanceledException("x"), Outcome.ResponseTimeout },
        { "timed out, no exception", ForwarderError.RequestTimedOut, null, Outcome.ResponseTimeout },
        { "timed out, OperationCanceledException", ForwarderError.RequestTimedOut, new OperationCanceledException(), Outcome.ResponseTimeout },
        // Sent, then the connection broke before the response headers.
        { "reset before headers", ForwarderError.Request,
            Http(HttpRequestError.Unknown, new IOException("reset", Socket(SocketError.ConnectionReset))), Outcome.ResetBeforeHeaders },
        { "response ended", ForwarderError.Request, Http(HttpRequestError.ResponseEnded), Outcome.ResetBeforeHeaders },
        { "invalid response", ForwarderError.Request, Http(HttpRequestError.InvalidResponse), Outcome.ResetBeforeHeaders },
        { "request body to the backend failed", ForwarderError.RequestBodyDestination, new IOException("broken pipe"), Outcome.ResetBeforeHeaders },
        { "response headers", ForwarderError.ResponseHeaders, new InvalidOperationException(), Outcome.ResetBeforeHeaders },
        { "no error given", ForwarderError.NoAvailableDestinations, null, Outcome.ResetBeforeHeaders },
        // Broke while the response body was streaming.
        { "response body from the backend", ForwarderError.ResponseBodyDestination, new IOException(), Outcome.ResetAfterHeaders },
        { "upgraded response from the backend", ForwarderError.UpgradeResponseDestination, new IOException(), Outcome.ResetAfterHeaders },
        // The client's side: never the backend's fault.
        { "request canceled", ForwarderError.RequestCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "request body canceled", ForwarderError.RequestBodyCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "request body from the client", ForwarderError.RequestBodyClient, new IOException(), Outcome.ClientAbort },
        { "response body canceled", ForwarderError.ResponseBodyCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "response body to the client", ForwarderError.ResponseBodyClient, new IOException(), Outcome.ClientAbort },
        { "upgrade request canceled", ForwarderError.UpgradeRequestCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "upgrade request from the client", ForwarderError.UpgradeRequestClient, new IOException(), Outcome.ClientAbort },
        { "upgrade response to the client", ForwarderError.UpgradeResponseClient, new IOException(), Outcome.ClientAbort },
        { "upgrade response canceled", ForwarderError.UpgradeResponseCanceled, new OperationCanceledException(), Outcome.ClientAbort },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Classify_ForwarderFailure_Outcome(string scenario, ForwarderError error, Exception? exception, Outcome expected)
    {
        Assert.True(expected == Classify(error, exception), scenario);
    }

    [Theory]
    [InlineData(ForwarderError.Request)]
    [InlineData(ForwarderError.RequestTimedOut)]
    [InlineData(ForwarderError.ResponseBodyDestination)]
    public void Classify_ClientAbortedDuringAnyFailure_ClientAbort(ForwarderError error)
    {
        Assert.Equal(Outcome.ClientAbort, Classify(error, new IOException(), clientAborted: true));
    }

    [Theory]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    public void Classify_BadGatewayStatus_CountedAsAFailure(int status)
    {
        var outcome = Classify(ForwarderError.None, null, status: status);

        Assert.Equal(Outcome.BadGatewayStatus, outcome);
        Assert.True(outcome.IsBackendFailure());
    }

    [Theory]
    [InlineData(200)]
    [InlineData(301)]
    [InlineData(404)]
    [InlineData(500)]
    [InlineData(501)]
    [InlineData(505)]
    public void Classify_OtherStatus_AResponse(int status)
    {
        var outcome = Classify(ForwarderError.None, null, status: status);

        Assert.Equal(Outcome.Response, outcome);
        Assert.False(outcome.IsBackendFailure());
    }
}
