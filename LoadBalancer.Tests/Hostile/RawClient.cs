using System.Net.Sockets;
using System.Text;

namespace LoadBalancer.Tests.Hostile;

// A hostile client's connection: bytes go out exactly as written (no framing added, Latin-1 so
// "\x00".."\xff" are single bytes), and what comes back is read until the server closes, within
// a deadline. Support/RawHttp speaks well-formed HTTP; this one does not have to.
public sealed class RawClient : IAsyncDisposable
{
    readonly TcpClient _tcp;
    readonly NetworkStream _stream;
    readonly MemoryStream _received = new();
    readonly byte[] _buffer = new byte[16 * 1024];
    bool _closed, _reset;

    RawClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawClient> ConnectAsync(Uri server)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(server.Host, server.Port).WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
        return new RawClient(tcp);
    }

    public static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    /// <summary>Writes the bytes; false when the server had already closed or reset the
    /// connection (a server may answer and hang up before a hostile request is all sent).</summary>
    public async Task<bool> SendAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            await _stream.WriteAsync(bytes).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public Task<bool> SendAsync(string latin1) => SendAsync(Bytes(latin1));

    /// <summary>Closes our sending side (FIN): the request is complete as sent, nothing more comes.</summary>
    public void ShutdownSend()
    {
        try
        {
            _tcp.Client.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Reads until a whole final (non-1xx) response has come, the server closed the
    /// connection, or the deadline passed. Returns everything received so far.</summary>
    public async Task<RawExchange> ReadFinalResponseAsync(TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        while (!_closed && !Exchange.HasCompleteFinal && await ReadSomeAsync(timeout.Token)) { }
        return Exchange;
    }

    /// <summary>Reads until the server closes (or resets) the connection, or the deadline passes.
    /// Returns everything received on this connection, whatever was read before included.</summary>
    public async Task<RawExchange> ReadUntilCloseAsync(TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        while (!_closed && await ReadSomeAsync(timeout.Token)) { }
        return Exchange;
    }

    RawExchange Exchange => new(_received.ToArray(), _closed, _reset);

    // False when the deadline passed (the connection is still open).
    async Task<bool> ReadSomeAsync(CancellationToken timeout)
    {
        try
        {
            var n = await _stream.ReadAsync(_buffer, timeout);
            if (n == 0) _closed = true;
            _received.Write(_buffer, 0, n);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (IOException)
        {
            _closed = _reset = true;
            return true;
        }
    }

    /// <summary>Reads until at least <paramref name="count"/> bytes came (fewer if the server closed first).</summary>
    public async Task<byte[]> ReadAtLeastAsync(int count, TimeSpan deadline)
    {
        var buffer = new byte[count];
        var n = await _stream.ReadAtLeastAsync(buffer, count, throwOnEndOfStream: false).AsTask().WaitAsync(deadline);
        return buffer[..n];
    }

    /// <summary>Hangs up at once, with a reset (no FIN, unread data dropped).</summary>
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
