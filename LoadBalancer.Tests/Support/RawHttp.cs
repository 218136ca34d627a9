using System.Net.Sockets;
using System.Text;

namespace LoadBalancer.Tests.Support;

// HTTP/1.1 by hand over a TcpClient, for requests HttpClient will not send as written:
// hop-by-hop headers (Connection: custom, TE, Upgrade ...) and repeated header lines.
public static class RawHttp
{
    /// <summary>Sends <paramref name="head"/> (request line and header lines, no final blank line)
    /// on a new connection and reads one response (Content-Length, chunked, or until the server closes).</summary>
    public static async Task<RawResponse> SendAsync(Uri server, string head, string? body = null)
    {
        await using var connection = await RawConnection.OpenAsync(server);
        return await connection.SendAsync(head, body);
    }
}

// One kept-alive client connection: several requests in turn, and a way to see the server close it.
public sealed class RawConnection : IAsyncDisposable
{
    readonly TcpClient _tcp;
    readonly NetworkStream _stream;
    readonly Reader _reader;

    RawConnection(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _reader = new Reader(_stream);
    }

    public static async Task<RawConnection> OpenAsync(Uri server)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port).WaitAsync(TimeSpan.FromSeconds(10));
        return new RawConnection(tcp);
    }

    public async Task<RawResponse> SendAsync(string head, string? body = null)
    {
        var bodyBytes = body is null ? [] : Encoding.UTF8.GetBytes(body);
        var request = head.TrimEnd('\r', '\n') + "\r\n"
            + (body is null ? "" : $"Content-Length: {bodyBytes.Length}\r\n") + "\r\n";
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(request));
        await _stream.WriteAsync(bodyBytes);
        return await ReadResponseAsync(_reader).WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Completes when the server closes (or resets) this connection.</summary>
    public async Task WaitForCloseAsync(TimeSpan deadline)
    {
        try
        {
            await _reader.CopyToEndAsync(Stream.Null).WaitAsync(deadline);
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
        }
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }

    static async Task<RawResponse> ReadResponseAsync(Reader reader)
    {
        var statusLine = await reader.LineAsync() ?? throw new IOException("connection closed before a response");
        var status = int.Parse(statusLine.Split(' ')[1]);
        var headers = new List<KeyValuePair<string, string>>();
        while (await reader.LineAsync() is { Length: > 0 } line)
        {
            var colon = line.IndexOf(':');
            headers.Add(new(line[..colon].Trim(), line[(colon + 1)..].Trim()));
        }
        string? Header(string name) => headers.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value;

        var body = new MemoryStream();
        if (Header("Transfer-Encoding")?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true)
        {
            while (true)
            {
                var size = Convert.ToInt32((await reader.LineAsync())!.Split(';')[0], 16);
                if (size == 0)
                {
                    while (await reader.LineAsync() is { Length: > 0 }) { } // trailers
                    break;
                }
                await reader.CopyAsync(body, size);
                await reader.LineAsync();
            }
        }
        else if (Header("Content-Length") is { } length)
        {
            await reader.CopyAsync(body, int.Parse(length));
        }
        else if (status is not (204 or 304) && status >= 200)
        {
            await reader.CopyToEndAsync(body);
        }
        return new RawResponse(status, headers, Encoding.UTF8.GetString(body.ToArray()));
    }

    sealed class Reader(Stream stream)
    {
        readonly byte[] _buffer = new byte[16 * 1024];
        int _start, _end;

        async Task<bool> FillAsync()
        {
            if (_start == _end) _start = _end = 0;
            var n = await stream.ReadAsync(_buffer.AsMemory(_end));
            _end += n;
            return n > 0;
        }

        public async Task<string?> LineAsync()
        {
            var line = new StringBuilder();
            while (true)
            {
                for (; _start < _end; _start++)
                {
                    var c = (char)_buffer[_start];
                    if (c == '\n')
                    {
                        _start++;
                        return line.ToString().TrimEnd('\r');
                    }
                    line.Append(c);
                }
                if (!await FillAsync()) return line.Length > 0 ? line.ToString() : null;
            }
        }

        public async Task CopyAsync(Stream to, int count)
        {
            while (count > 0)
            {
                if (_start == _end && !await FillAsync()) throw new IOException("connection closed inside the body");
                var n = Math.Min(count, _end - _start);
                to.Write(_buffer, _start, n);
                _start += n;
                count -= n;
            }
        }

        public async Task CopyToEndAsync(Stream to)
        {
            do
            {
                to.Write(_buffer, _start, _end - _start);
                _start = _end;
            } while (await FillAsync());
        }
    }
}

public sealed record RawResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string Body);
