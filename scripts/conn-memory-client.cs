#!/usr/bin/env -S dotnet run
// The client for scripts/conn-memory.sh: opens N TCP connections to the balancer and holds them.
//   dotnet run scripts/conn-memory-client.cs -- 127.0.0.1 18101 4000 idle
//   dotnet run scripts/conn-memory-client.cs -- 127.0.0.1 18101 4000 request [--flood] [--body|--pipelined]
// idle: connects and sends nothing. request: sends one "GET /hold" on each connection (the hold
// backend never answers it); with --body a "POST /hold" with a 1 GiB body instead, sent as fast
// as the connection takes it (the hold backend never reads it); with --pipelined the GET and
// then 1 GiB of bytes after it, as if pipelining more requests. At most 256 connects are pending
// at once, unless --flood: then all N start at once, as a flood of clients would. Prints a
// status line whenever its counts change (at most 5 a second) and runs until it is killed.
using System.Net;
using System.Net.Sockets;
using System.Text;

if (args.Length < 4 || args[3] is not ("idle" or "request"))
{
    Console.Error.WriteLine("usage: conn-memory-client HOST PORT COUNT idle|request [--flood]");
    return 2;
}
var host = IPAddress.Parse(args[0]);
var port = int.Parse(args[1]);
var count = int.Parse(args[2]);
var sendRequest = args[3] == "request";
var flood = args.Contains("--flood");
const long BodyLength = 1L << 30;
var post = args.Contains("--body");
var body = post || args.Contains("--pipelined");
var request = Encoding.ASCII.GetBytes(post
    ? $"POST /hold HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {BodyLength}\r\n\r\n"
    : $"GET /hold HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
var chunk = new byte[64 * 1024];

int connected = 0, sent = 0, failed = 0, closed = 0, answered = 0;
long bodyBytes = 0;
var sockets = new Socket[count]; // held here so that nothing is collected and closed
var pending = new SemaphoreSlim(flood ? count : 256);

async Task OpenAsync(int i)
{
    await pending.WaitAsync();
    var socket = sockets[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    try
    {
        await socket.ConnectAsync(host, port);
    }
    catch (SocketException)
    {
        Interlocked.Increment(ref failed);
        return;
    }
    finally
    {
        pending.Release();
    }
    Interlocked.Increment(ref connected);
    try
    {
        if (sendRequest)
        {
            await socket.SendAsync(request);
            Interlocked.Increment(ref sent);
            if (body) _ = SendBodyAsync(socket);
        }
        // Nothing should come back while the script measures: count what does.
        var n = await socket.ReceiveAsync(new byte[1]);
        Interlocked.Increment(ref n == 0 ? ref closed : ref answered);
    }
    catch (SocketException)
    {
        Interlocked.Increment(ref closed);
    }
}

// Until the balancer stops reading: then the send waits, and the bytes counted stop growing.
async Task SendBodyAsync(Socket socket)
{
    try
    {
        for (long left = BodyLength; left > 0; left -= chunk.Length)
            Interlocked.Add(ref bodyBytes, await socket.SendAsync(chunk));
    }
    catch (SocketException)
    {
    }
}

for (var i = 0; i < count; i++) _ = OpenAsync(i);

var last = "";
while (true)
{
    var line = $"connected={Volatile.Read(ref connected)} sent={Volatile.Read(ref sent)} failed={Volatile.Read(ref failed)} " +
        (body ? $"body_mib={Interlocked.Read(ref bodyBytes) >> 20} " : "") +
        $"closed={Volatile.Read(ref closed)} answered={Volatile.Read(ref answered)}";
    if (line != last) Console.WriteLine(last = line);
    await Task.Delay(200);
}
