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
        FailureClassifier.Classify(error, exception, new FailureClassifier.Facts(ClientAborted: clientAborted), status);

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
        { "TLS failure in the pool's own handshake (a connection error around it)", ForwarderError.Request,
            Http(HttpRequestError.ConnectionError, new AuthenticationException("remote certificate invalid")), Outcome.TlsFailure },
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
        { "no error given, response headers", ForwarderError.ResponseHeaders, null, Outcome.ResetBeforeHeaders },
        // Broke while the response body was streaming.
        { "response body from the backend", ForwarderError.ResponseBodyDestination, new IOException(), Outcome.ResetAfterHeaders },
        { "upgraded response from the backend", ForwarderError.UpgradeResponseDestination, new IOException(), Outcome.ResetAfterHeaders },
        // The client's side: never the backend's fault.
        { "request canceled", ForwarderError.RequestCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "request body canceled", ForwarderError.RequestBodyCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "request body from the client", ForwarderError.RequestBodyClient, new IOException(), Outcome.ClientAbort },

        { "response body to the client", ForwarderError.ResponseBodyClient, new IOException(), Outcome.ClientAbort },

        { "upgrade request from the client", ForwarderError.UpgradeRequestClient, new IOException(), Outcome.ClientAbort },
        { "upgrade response to the client", ForwarderError.UpgradeResponseClient, new IOException(), Outcome.ClientAbort },
        { "response body canceled", ForwarderError.ResponseBodyCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "upgrade request canceled", ForwarderError.UpgradeRequestCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        { "upgrade response canceled", ForwarderError.UpgradeResponseCanceled, new OperationCanceledException(), Outcome.ClientAbort },
        // Idle after headers: YARP's activity timeout (streamIdleTimeout, tunnelIdleTimeout) cut it.
        // YARP blames the side it was reading from: a cancellation inside a backend read error.
        { "response body idle", ForwarderError.ResponseBodyDestination, new TaskCanceledException(), Outcome.StreamIdle },
        { "response body idle, wrapped", ForwarderError.ResponseBodyDestination,
            new IOException("x", new OperationCanceledException()), Outcome.StreamIdle },
        { "tunnel idle", ForwarderError.UpgradeActivityTimeout, new OperationCanceledException(), Outcome.TunnelIdle },
        // The balancer could not build the request (CONNECT reaches here if not screened first).
        { "request creation", ForwarderError.RequestCreation, new NotSupportedException("Unsupported request method 'CONNECT'."), Outcome.NotForwarded },
        { "no destinations (YARP routing, unused)", ForwarderError.NoAvailableDestinations, null, Outcome.NotForwarded },
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
    [InlineData(ForwarderError.RequestBodyDestination)]
    public void Classify_ClientAbortedDuringAFailureBeforeHeaders_ClientAbort(ForwarderError error)
    {
        Assert.Equal(Outcome.ClientAbort, Classify(error, new IOException(), clientAborted: true));
    }

    // YARP aborts the client connection itself after the backend broke the response body, so
    // RequestAborted is often set by the time the handler looks: still the backend's reset.
    [Fact]
    public void Classify_BackendBrokeTheBodyAndYarpAbortedTheClient_ResetAfterHeaders()
    {
        var outcome = Classify(ForwarderError.ResponseBodyDestination, new IOException("reset", Socket(SocketError.ConnectionReset)), clientAborted: true);

        Assert.Equal(Outcome.ResetAfterHeaders, outcome);
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

    // Whose doing each ForwarderError is. The switch has no default arm and CS8509 (a named
    // value not handled) is an error under TreatWarningsAsErrors: when YARP adds a value, this
    // test stops compiling until someone decides its side, instead of it counting as a reset.
    static Side ExpectedSide(ForwarderError error) =>
#pragma warning disable CS8524 // values outside the enum cannot come from YARP
        error switch
#pragma warning restore CS8524
        {
            ForwarderError.None => Side.None,
            ForwarderError.Request => Side.Backend,
            ForwarderError.RequestTimedOut => Side.Backend,
            ForwarderError.RequestCanceled => Side.Client,
            ForwarderError.RequestBodyCanceled => Side.Client,
            ForwarderError.RequestBodyClient => Side.Client,
            ForwarderError.RequestBodyDestination => Side.Backend,
            ForwarderError.ResponseHeaders => Side.Backend,
            ForwarderError.ResponseBodyCanceled => Side.Client,
            ForwarderError.ResponseBodyClient => Side.Client,
            ForwarderError.ResponseBodyDestination => Side.Backend,
            ForwarderError.UpgradeRequestCanceled => Side.Client,
            ForwarderError.UpgradeRequestClient => Side.Client,
            ForwarderError.UpgradeRequestDestination => Side.Backend,
            ForwarderError.UpgradeResponseCanceled => Side.Client,
            ForwarderError.UpgradeResponseClient => Side.Client,
            ForwarderError.UpgradeResponseDestination => Side.Backend,
            ForwarderError.NoAvailableDestinations => Side.Balancer,
            ForwarderError.RequestCreation => Side.Balancer,
            ForwarderError.UpgradeActivityTimeout => Side.None, // an idle tunnel closed: nobody's failure
        };

    public static TheoryData<ForwarderError> EveryForwarderError => new(Enum.GetValues<ForwarderError>());

    [Theory]
    [MemberData(nameof(EveryForwarderError))]
    public void SideOf_EveryForwarderError_OnTheSideDecidedForIt(ForwarderError error)
    {
        Assert.Equal(ExpectedSide(error), FailureClassifier.SideOf(error));
    }

    [Theory]
    [MemberData(nameof(EveryForwarderError))]
    public void Classify_EveryForwarderErrorWhileTheClientIsGone_NeverTheBackendsButABrokenResponseBody(ForwarderError error)
    {
        var outcome = Classify(error, new IOException("reset", Socket(SocketError.ConnectionReset)), clientAborted: true, status: 200);

        Assert.Equal(error == ForwarderError.ResponseBodyDestination, outcome.IsBackendFailure());
    }

    [Theory]
    [InlineData(ForwarderError.RequestCanceled)]
    [InlineData(ForwarderError.RequestBodyCanceled)]
    [InlineData(ForwarderError.RequestTimedOut)]
    public void Classify_HeaderDeadlinePassedWithTheWholeRequestSent_ResponseTimeout(ForwarderError error)
    {
        var outcome = FailureClassifier.Classify(error, new TaskCanceledException(), new FailureClassifier.Facts(HeaderDeadlinePassed: true), 502);

        Assert.Equal(Outcome.ResponseTimeout, outcome);
        Assert.True(outcome.IsBackendFailure());
    }

    [Theory]
    [InlineData(ForwarderError.RequestCanceled, true)]
    [InlineData(ForwarderError.RequestBodyCanceled, true)]
    [InlineData(ForwarderError.RequestTimedOut, true)]
    [InlineData(ForwarderError.RequestTimedOut, false)] // streamIdleTimeout ran out while the upload stalled
    public void Classify_TimedOutWhileTheClientsBodyWasIncomplete_ClientStallNotABackendFailure(ForwarderError error, bool deadline)
    {
        var facts = new FailureClassifier.Facts(HeaderDeadlinePassed: deadline, RequestBodyIncomplete: true);

        var outcome = FailureClassifier.Classify(error, new TaskCanceledException(), facts, 0);

        Assert.Equal(Outcome.ClientStall, outcome);
        Assert.False(outcome.IsBackendFailure());
    }

    [Fact]
    public void Classify_ConnectTimeoutWhileTheBodyWasIncomplete_StillTheBackends()
    {
        var facts = new FailureClassifier.Facts(RequestBodyIncomplete: true);

        Assert.Equal(Outcome.ConnectTimeout, FailureClassifier.Classify(ForwarderError.RequestTimedOut,
            new TaskCanceledException("x", new TimeoutException()), facts, 0));
    }

    public static TheoryData<Outcome> EveryOutcome => new(Enum.GetValues<Outcome>());

    [Theory]
    [MemberData(nameof(EveryOutcome))]
    public void IsBackendFailure_OnlyTheBackendsOwnBehaviour(Outcome outcome)
    {
        var backendCaused = outcome is Outcome.BadGatewayStatus or Outcome.ConnectRefused or Outcome.ConnectTimeout
            or Outcome.TlsFailure or Outcome.ResponseTimeout or Outcome.ResetBeforeHeaders or Outcome.ResetAfterHeaders;

        Assert.Equal(backendCaused, outcome.IsBackendFailure());
    }
}
