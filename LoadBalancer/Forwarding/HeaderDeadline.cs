namespace LoadBalancer.Forwarding;

// requestTimeout as the contract means it: once the backend has the whole request, it has that
// long to send response headers; nothing after the headers is bound by it. YARP's ActivityTimeout
// cannot say this (it restarts on every byte and goes on after the headers, so it bounds the gaps
// of a stream: that is streamIdleTimeout's job), so each attempt gets its own token for
// IHttpForwarder.SendAsync:
//   - armed when the client's request body is complete (at once when there is none), so a slow
//     upload is never the backend's timeout;
//   - disarmed when the response headers arrive (ForwardedHeaders.TransformResponseAsync).
// Go: ctx, cancel := context.WithTimeout(...) started by the body's EOF and stopped by the headers.
public sealed class HeaderDeadline(TimeSpan timeout) : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    int _state; // Waiting -> Armed -> HeadersCame, or Waiting -> HeadersCame

    const int Waiting = 0, Armed = 1, HeadersCame = 2;

    public CancellationToken Token => _cts.Token;

    /// <summary>The deadline ran out (before the headers: it is disarmed when they come).</summary>
    public bool Passed => _cts.IsCancellationRequested;

    /// <summary>The whole request has been sent to the backend: start the clock.</summary>
    public void Arm()
    {
        if (Interlocked.CompareExchange(ref _state, Armed, Waiting) != Waiting) return;
        _cts.CancelAfter(timeout);
        // The headers may have come between the exchange and CancelAfter: then disarm again.
        if (Volatile.Read(ref _state) == HeadersCame) _cts.CancelAfter(Timeout.InfiniteTimeSpan);
    }

    /// <summary>Response headers arrived: the rest of the exchange is streamIdleTimeout's.</summary>
    public void HeadersArrived()
    {
        if (Interlocked.Exchange(ref _state, HeadersCame) == Armed) _cts.CancelAfter(Timeout.InfiniteTimeSpan);
    }

    public void Dispose() => _cts.Dispose();
}

// The client's request body as YARP reads it, watched for its end: that is when the request has
// been sent whole and the backend's clock (HeaderDeadline) starts. Installed once per request
// that has a body; each attempt hands it its deadline. It also counts the bytes (the access
// log's bytesIn): one add per read.
public sealed class RequestBodyWatch(Stream inner) : Stream
{
    HeaderDeadline? _deadline;
    int _complete;
    long _bytes; // one read at a time (a request has one reader)

    /// <summary>Body bytes read from the client so far.</summary>
    public long BytesRead => _bytes;

    /// <summary>The client has sent its whole body (a read returned 0).</summary>
    public bool Complete => Volatile.Read(ref _complete) == 1;

    /// <summary>Replaces the request's body with a watched one when the request has a body;
    /// null when it has none.</summary>
    public static RequestBodyWatch? Install(Microsoft.AspNetCore.Http.HttpContext context)
    {
        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestBodyDetectionFeature>() is not { CanHaveBody: true })
            return null;
        var watch = new RequestBodyWatch(context.Request.Body);
        context.Request.Body = watch;
        return watch;
    }

    /// <summary>This attempt's deadline: armed now if the body is complete, else at its end.</summary>
    public void StartsWhenComplete(HeaderDeadline deadline)
    {
        Volatile.Write(ref _deadline, deadline);
        if (Complete) deadline.Arm();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        _bytes += n;
        if (n == 0 && buffer.Length > 0) Ended();
        return n;
    }

    public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        await ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false);

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = inner.Read(buffer, offset, count);
        _bytes += n;
        if (n == 0 && count > 0) Ended();
        return n;
    }

    void Ended()
    {
        Volatile.Write(ref _complete, 1);
        Volatile.Read(ref _deadline)?.Arm();
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
