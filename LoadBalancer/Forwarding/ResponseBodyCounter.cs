using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace LoadBalancer.Forwarding;

// Counts the response body bytes sent to the client (the access log's bytesOut), installed only
// while the access log is on. It stands in for Kestrel's IHttpResponseBodyFeature and passes
// everything through: YARP copies the backend's body into Response.Body (this stream), and the
// balancer's own answers (Response.WriteAsync uses BodyWriter) go through a PipeWriter over it.
// Start, completion and buffering stay Kestrel's. An upgraded tunnel (WebSocket) bypasses the
// body, so its bytes are not counted.
public sealed class ResponseBodyCounter(IHttpResponseBodyFeature inner) : Stream, IHttpResponseBodyFeature
{
    long _bytes; // one write at a time (a response has one writer); read after the last
    PipeWriter? _writer;

    /// <summary>Body bytes handed to Kestrel so far.</summary>
    public long Bytes => _bytes;

    public static ResponseBodyCounter Install(IFeatureCollection features)
    {
        var counter = new ResponseBodyCounter(features.GetRequiredFeature<IHttpResponseBodyFeature>());
        features.Set<IHttpResponseBodyFeature>(counter);
        return counter;
    }

    // ---- IHttpResponseBodyFeature ----

    Stream IHttpResponseBodyFeature.Stream => this;

    public PipeWriter Writer => _writer ??= PipeWriter.Create(this, new StreamPipeWriterOptions(leaveOpen: true));

    public void DisableBuffering() => inner.DisableBuffering();

    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        await inner.SendFileAsync(path, offset, count, cancellationToken).ConfigureAwait(false);
        _bytes += count ?? new FileInfo(path).Length - offset;
    }

    public async Task CompleteAsync()
    {
        if (_writer is not null) await _writer.FlushAsync().ConfigureAwait(false);
        await inner.CompleteAsync().ConfigureAwait(false);
    }

    // ---- Stream: writes pass through, counted ----

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await inner.Stream.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        _bytes += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        inner.Stream.Write(buffer);
        _bytes += buffer.Length;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.Stream.FlushAsync(cancellationToken);
    public override void Flush() => inner.Stream.Flush();

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
