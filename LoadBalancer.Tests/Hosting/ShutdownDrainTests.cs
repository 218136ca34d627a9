using System.Net;
using System.Net.Sockets;
using LoadBalancer.Hosting;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using NSubstitute;

namespace LoadBalancer.Tests.Hosting;

// The drain without a host: a fake clock for the grace, a held connection delegate for an open
// client connection, a substituted listener, a response feature that runs OnStarting on demand.
public sealed class ShutdownDrainTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    readonly FakeTimeProvider _time = new();
    readonly LogSink _logs = new();
    readonly ShutdownDrain _drain;

    public ShutdownDrainTests() =>
        _drain = new ShutdownDrain(_time, new Logger<ShutdownDrain>(LoggerFactory.Create(l => l.AddProvider(_logs))), TimeSpan.FromSeconds(30));

    [Fact]
    public async Task StoppingAsync_NoClientConnection_EndsWithoutWaitingForGrace()
    {
        // The clock never moves: only "no connection open" can end the wait.
        await _drain.StoppingAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.DoesNotContain(_logs.Lines, l => l.Message.Contains("after the 5 s grace"));
    }

    [Fact]
    public async Task StoppingAsync_ClientConnectionOpen_EndsWhenItCloses()
    {
        var connection = OpenConnection();

        var stopping = _drain.StoppingAsync(CancellationToken.None);
        var waitedForConnection = !stopping.IsCompleted;
        await connection.CloseAsync();
        await stopping.WaitAsync(Deadline);

        Assert.True(waitedForConnection, "the stop went on with a client connection open");
        Assert.Equal(0, _drain.OpenClientConnections);
        Assert.DoesNotContain(_logs.Lines, l => l.Message.Contains("after the 5 s grace"));
    }

    [Fact]
    public async Task StoppingAsync_ClientConnectionStaysOpen_EndsAfterGrace()
    {
        var connection = OpenConnection();

        var stopping = _drain.StoppingAsync(CancellationToken.None);
        _time.Advance(ShutdownDrain.Grace - TimeSpan.FromMilliseconds(1));
        var waitedAlmostGrace = !stopping.IsCompleted;
        _time.Advance(TimeSpan.FromMilliseconds(1));
        await stopping.WaitAsync(Deadline);

        Assert.True(waitedAlmostGrace, "the grace ended before its time");
        Assert.Contains(_logs.Lines, l => l.Message.Contains("1 client connections still open after the 5 s grace"));
        Assert.Equal(1, _drain.OpenClientConnections);
        await connection.CloseAsync();
    }

    [Fact]
    public async Task StoppingAsync_ShutdownTimeoutAlreadyOver_EndsWithoutThrowing()
    {
        OpenConnection();

        await _drain.StoppingAsync(new CancellationToken(canceled: true)).WaitAsync(Deadline);
    }

    [Fact]
    public async Task StoppingAsync_ListenerBoundThroughFactory_IsUnboundButNotDisposed()
    {
        var transport = Substitute.For<IConnectionListenerFactory>();
        var listener = Substitute.For<IConnectionListener>();
        var endpoint = new IPEndPoint(IPAddress.Loopback, 0);
        transport.BindAsync(endpoint, Arg.Any<CancellationToken>()).Returns(ValueTask.FromResult(listener));
        var bound = await new TrackingListenerFactory(transport, _drain).BindAsync(endpoint);

        await _drain.StoppingAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.Same(listener, bound);
        await listener.Received(1).UnbindAsync(Arg.Any<CancellationToken>());
        // Disposing frees the memory pool the open connections still use: that is Kestrel's, later.
        await listener.DidNotReceive().DisposeAsync();
    }

    [Theory]
    [InlineData(SocketError.AddressAlreadyInUse, "address already in use")]
    [InlineData(SocketError.AccessDenied, "permission denied")]
    [InlineData(SocketError.AddressNotAvailable, "this machine has no such address")]
    public async Task BindAsync_TransportCannotBind_CannotListenNamingAddressAndReason(SocketError error, string reason)
    {
        var transport = Substitute.For<IConnectionListenerFactory>();
        var endpoint = new IPEndPoint(IPAddress.Loopback, 80);
        var socket = new SocketException((int)error);
        // The socket transport wraps an address in use in AddressInUseException; other bind errors pass as they are.
        Exception thrown = error == SocketError.AddressAlreadyInUse ? new AddressInUseException(socket.Message, socket) : socket;
        transport.BindAsync(endpoint, Arg.Any<CancellationToken>()).Returns<ValueTask<IConnectionListener>>(_ => throw thrown);

        var e = await Assert.ThrowsAsync<CannotListenException>(() => new TrackingListenerFactory(transport, _drain).BindAsync(endpoint).AsTask());

        Assert.Equal(endpoint, e.EndPoint);
        Assert.Equal(reason, e.Reason);
        Assert.Same(thrown, e.InnerException);
    }

    [Fact]
    public async Task CloseWhenStopping_ResponseStartsAfterStopBegan_SaysConnectionClose()
    {
        var response = new StartableResponse();
        _drain.CloseWhenStopping(response.Response); // the request arrived before the stop
        await _drain.StoppingAsync(CancellationToken.None).WaitAsync(Deadline);

        await response.StartAsync();

        Assert.Equal("close", response.Response.Headers.Connection.ToString());
    }

    [Fact]
    public async Task CloseWhenStopping_ResponseStartsBeforeStop_KeepsConnection()
    {
        var response = new StartableResponse();
        _drain.CloseWhenStopping(response.Response);

        await response.StartAsync();

        Assert.False(response.Response.Headers.ContainsKey("Connection"));
    }

    [Fact]
    public async Task CloseWhenStopping_SwitchingProtocols_KeepsUpgrade()
    {
        var response = new StartableResponse();
        _drain.CloseWhenStopping(response.Response);
        await _drain.StoppingAsync(CancellationToken.None).WaitAsync(Deadline);
        response.Response.StatusCode = StatusCodes.Status101SwitchingProtocols;
        response.Response.Headers.Connection = "Upgrade";

        await response.StartAsync();

        Assert.Equal("Upgrade", response.Response.Headers.Connection.ToString());
    }

    [Fact]
    public async Task CountInFlight_ResponseEnded_NoLongerCounted()
    {
        var first = new StartableResponse();
        var second = new StartableResponse();
        _drain.CountInFlight(first.Response);
        _drain.CountInFlight(second.Response);
        var both = _drain.InFlightRequests;

        await first.CompleteAsync();

        Assert.Equal(2, both);
        Assert.Equal(1, _drain.InFlightRequests);
    }

    [Fact]
    public async Task StoppingAsync_TimeoutRunsOutWithTwoRequestsInFlight_LogsBothAsCutEvenIfOneEndsAtOnce()
    {
        var ended = new StartableResponse();
        var aborted = new StartableResponse();
        var hanging = new StartableResponse();
        _drain.CountInFlight(ended.Response);
        _drain.CountInFlight(aborted.Response);
        _drain.CountInFlight(hanging.Response);
        await ended.CompleteAsync();
        using var shutdownTimeout = new CancellationTokenSource();
        await _drain.StoppingAsync(shutdownTimeout.Token).WaitAsync(Deadline);

        shutdownTimeout.Cancel();      // the host's token: the shutdown timeout is over
        await aborted.CompleteAsync(); // Kestrel's abort ends one at once (its callback may run first)
        var loggedEarly = _logs.Lines.Any(l => l.Message.Contains("ran out"));
        await _drain.StoppedAsync(CancellationToken.None).WaitAsync(Deadline);

        Assert.False(loggedEarly, "the cut was logged before the stop ended");
        var line = Assert.Single(_logs.Lines, l => l.Message.Contains("ran out"));
        Assert.Equal("Stopping: the 30 s drain ran out; 2 requests still in flight were cut", line.Message);
        Assert.Equal(LogLevel.Warning, line.Level);
    }

    [Fact]
    public async Task StoppedAsync_StopEndedInTime_TokenFiringLaterLogsNothing()
    {
        _drain.CountInFlight(new StartableResponse().Response);
        using var shutdownTimeout = new CancellationTokenSource();
        await _drain.StoppingAsync(shutdownTimeout.Token).WaitAsync(Deadline);
        await _drain.StoppedAsync(CancellationToken.None).WaitAsync(Deadline);

        shutdownTimeout.Cancel();

        Assert.DoesNotContain(_logs.Lines, l => l.Message.Contains("ran out"));
    }

    // A client connection through the drain's connection middleware, open until Close.
    HeldConnection OpenConnection()
    {
        var held = new HeldConnection();
        held.Running = _drain.CountConnections(_ => held.Closed.Task)(new DefaultConnectionContext());
        Assert.False(held.Running.IsCompleted);
        return held;
    }

    sealed class HeldConnection
    {
        public TaskCompletionSource Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task Running { get; set; } = Task.CompletedTask;

        public Task CloseAsync()
        {
            Closed.TrySetResult();
            return Running.WaitAsync(Deadline);
        }
    }

    // HttpResponse whose OnStarting callbacks run when the test says the headers go out, and
    // whose OnCompleted callbacks when it says the response has ended.
    sealed class StartableResponse : HttpResponseFeature
    {
        readonly List<(Func<object, Task> Callback, object State)> _starting = [];
        readonly List<(Func<object, Task> Callback, object State)> _completed = [];

        public StartableResponse()
        {
            var context = new DefaultHttpContext();
            context.Features.Set<IHttpResponseFeature>(this);
            Response = context.Response;
        }

        public HttpResponse Response { get; }

        public override void OnStarting(Func<object, Task> callback, object state) => _starting.Add((callback, state));

        public override void OnCompleted(Func<object, Task> callback, object state) => _completed.Add((callback, state));

        public async Task StartAsync()
        {
            for (var i = _starting.Count - 1; i >= 0; i--) await _starting[i].Callback(_starting[i].State);
        }

        public async Task CompleteAsync()
        {
            for (var i = _completed.Count - 1; i >= 0; i--) await _completed[i].Callback(_completed[i].State);
        }
    }
}
