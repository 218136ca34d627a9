using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Hosting;

// Graceful stop, the part before Kestrel's own. The host calls StoppingAsync on every
// IHostedLifecycleService before it calls StopAsync on any hosted service, so this runs while
// Kestrel still serves:
//   1. unbind every listening socket: new connections are refused from here on;
//   2. from here on every response says Connection: close, and Kestrel closes its connection
//      after it (a response that starts later, in flight now, included);
//   3. give the client connections already open up to Grace to send that last request; end
//      early once none is open.
// Then Kestrel's StopAsync closes the idle connections left, lets in-flight requests finish
// (HostOptions.ShutdownTimeout, which this grace counts against), and the stages stop.
// When the shutdown timeout runs out first, Kestrel cuts the requests still in flight; the
// host's stop token fires at that moment, and one line says how many were cut.
// Without step 3 Kestrel closes an idle kept-alive connection at once, and a client that sends
// its next request on it just then gets a reset instead of an answer.
public sealed class ShutdownDrain : IHostedLifecycleService
{
    // nginx (graceful stop) and HAProxy (soft-stop, by default) close idle client connections at
    // once and answer the next request on a busy one with Connection: close. HAProxy can instead
    // keep idle ones until their next request (`idle-close-on-response`) or spread the closing
    // over a window (`close-spread-time`), bounded by `hard-stop-after`. We keep them a short,
    // bounded while: 5 s covers a request already on the wire many times over and the next
    // request of any client still sending traffic, yet uses only a sixth of the 30 s stop budget,
    // and a stop with no client connection open does not wait at all.
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(5);

    readonly TimeProvider _time;
    readonly ILogger<ShutdownDrain> _log;
    readonly TimeSpan _shutdownTimeout;
    readonly Lock _gate = new();
    readonly List<IConnectionListener> _listeners = [];
    readonly TaskCompletionSource _noClientConnections = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly Func<object, Task> _closeIfStopping;
    readonly Func<object, Task> _requestEnded;
    // Open client connections and client requests in flight. Counters, not backend state: they
    // are only this component's own "is anyone still connected" signal for the grace and "how
    // many were cut" for the log, so they need no stage to own them.
    int _open;
    int _inFlight;
    int _endedAfterTimeRanOut; // requests that ended after the shutdown timeout ran out
    int _stopping;
    CancellationToken _stop; // the host's stop token: cancelled when the shutdown timeout runs out

    /// <param name="shutdownTimeout">HostOptions.ShutdownTimeout, for the line a stop that runs out writes.</param>
    public ShutdownDrain(TimeProvider time, ILogger<ShutdownDrain> log, TimeSpan shutdownTimeout)
    {
        _time = time;
        _log = log;
        _shutdownTimeout = shutdownTimeout;
        // One delegate each for all requests: with Kestrel's per-connection callback lists,
        // OnStarting and OnCompleted allocate nothing per request.
        _closeIfStopping = CloseIfStopping;
        _requestEnded = RequestEnded;
    }

    public bool IsStopping => Volatile.Read(ref _stopping) == 1;

    /// <summary>Open connections on the client listener.</summary>
    public int OpenClientConnections => Volatile.Read(ref _open);

    /// <summary>Client requests counted by CountInFlight whose response has not ended yet.</summary>
    public int InFlightRequests => Volatile.Read(ref _inFlight);

    /// <summary>Kestrel binds every listener through TrackingListenerFactory, which hands it here.</summary>
    internal void Track(IConnectionListener listener)
    {
        lock (_gate) _listeners.Add(listener);
    }

    /// <summary>Connection middleware for the client listener: counts its open connections.</summary>
    public ConnectionDelegate CountConnections(ConnectionDelegate next) => async connection =>
    {
        Interlocked.Increment(ref _open);
        try
        {
            await next(connection);
        }
        finally
        {
            // Decrement, then read the flag; StoppingAsync sets the flag, then reads the count.
            // Both are full fences, so one of the two sees the other: the last close is not missed.
            if (Interlocked.Decrement(ref _open) == 0 && IsStopping) _noClientConnections.TrySetResult();
        }
    };

    /// <summary>Call for each request: a response that starts once the stop has begun carries
    /// Connection: close. Checked when the headers go out, after YARP copied the backend's
    /// (YARP never copies a backend's Connection header).</summary>
    public void CloseWhenStopping(HttpResponse response) => response.OnStarting(_closeIfStopping, response);

    /// <summary>Call for each client request: it counts as in flight until its response has
    /// ended (Kestrel runs OnCompleted after the app, also for an aborted request).</summary>
    public void CountInFlight(HttpResponse response)
    {
        Interlocked.Increment(ref _inFlight);
        response.OnCompleted(_requestEnded, this);
    }

    static Task RequestEnded(object state)
    {
        var drain = (ShutdownDrain)state;
        Interlocked.Decrement(ref drain._inFlight);
        // Still open when the time ran out: cut. A token reads as cancelled before any of its
        // callbacks runs (Kestrel's abort among them), so no request cut by it is missed here.
        if (drain._stop.IsCancellationRequested) Interlocked.Increment(ref drain._endedAfterTimeRanOut);
        return Task.CompletedTask;
    }

    Task CloseIfStopping(object state)
    {
        // 101 keeps its Connection: Upgrade; the tunnel ends when Kestrel's stop aborts it.
        // The listeners have no TLS, so HTTP/1.x only: no HTTP/2 stream to spoil.
        if (IsStopping && state is HttpResponse { StatusCode: not StatusCodes.Status101SwitchingProtocols } response)
            response.Headers.Connection = "close";
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        // The host's stop token: it is cancelled when the shutdown timeout runs out, and Kestrel
        // then aborts every connection left. A request may end at once on another thread, even
        // before a callback of ours would run, so nothing is counted at that moment: every request
        // that ends once the token reads as cancelled, plus those still open at StoppedAsync, was cut.
        _stop = cancellationToken;
        Interlocked.Exchange(ref _stopping, 1);
        IConnectionListener[] listeners;
        lock (_gate) listeners = [.. _listeners];
        // Kestrel unbinds them again in its StopAsync: for the socket transport that disposes
        // the listening socket a second time, which is harmless.
        foreach (var listener in listeners) await listener.UnbindAsync(cancellationToken);

        var open = OpenClientConnections;
        Log.StoppedListening(_log, open, InFlightRequests, Grace.TotalSeconds);
        if (open == 0) _noClientConnections.TrySetResult();
        try
        {
            await _noClientConnections.Task.WaitAsync(Grace, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            Log.GraceOver(_log, OpenClientConnections, Grace.TotalSeconds);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The shutdown timeout is over already; Kestrel's stop now aborts what is left.
        }
    }

    // Every hosted service has stopped. The stop token cancelled by now means the time ran out
    // (a stop that ends in time gets here first; the token cancelled later means nothing was cut).
    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (_stop.IsCancellationRequested)
            Log.DrainRanOut(_log, _shutdownTimeout.TotalSeconds, Volatile.Read(ref _endedAfterTimeRanOut) + InFlightRequests);
        return Task.CompletedTask;
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
