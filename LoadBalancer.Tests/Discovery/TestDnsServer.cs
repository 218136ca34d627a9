using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace LoadBalancer.Tests.Discovery;

// A tiny authoritative DNS server for the tests, on 127.0.0.1 (UDP and TCP on one port, chosen by
// the system): answers A and AAAA questions from a table the test changes while it runs, with the
// TTL the test sets; a name it does not know is NXDOMAIN; Fail makes it answer SERVFAIL. An
// answer too big for 512 bytes goes over UDP truncated (TC), so the client asks again over TCP,
// as real resolvers do. Counts the questions it got. Just enough DNS (RFC 1035) for DnsClient.
public sealed class TestDnsServer : IAsyncDisposable
{
    readonly UdpClient _udp;
    readonly TcpListener _tcp;
    readonly CancellationTokenSource _stop = new();
    readonly Task _udpLoop, _tcpLoop;
    readonly ConcurrentDictionary<string, Zone> _zones = new(StringComparer.OrdinalIgnoreCase);
    int _questions;

    public sealed record Zone(IPAddress[] Addresses, int Ttl = 30, bool Fail = false);

    public IPEndPoint EndPoint { get; }
    public string Nameserver => EndPoint.ToString();
    public int Questions => Volatile.Read(ref _questions);

    TestDnsServer(UdpClient udp, TcpListener tcp)
    {
        _udp = udp;
        _tcp = tcp;
        EndPoint = (IPEndPoint)udp.Client.LocalEndPoint!;
        _udpLoop = Task.Run(UdpLoopAsync);
        _tcpLoop = Task.Run(TcpLoopAsync);
    }

    public static TestDnsServer Start()
    {
        for (var attempt = 0; ; attempt++)
        {
            var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)udp.Client.LocalEndPoint!).Port;
            var tcp = new TcpListener(IPAddress.Loopback, port);
            try
            {
                tcp.Start();
                return new TestDnsServer(udp, tcp);
            }
            catch (SocketException) when (attempt < 20) // the TCP port of that number was taken: another pair
            {
                udp.Dispose();
            }
        }
    }

    /// <summary>What name resolves to from now on.</summary>
    public void Set(string name, Zone zone) => _zones[name] = zone;

    public void Set(string name, params string[] addresses) => Set(name, new Zone(addresses.Select(IPAddress.Parse).ToArray()));

    async Task UdpLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            UdpReceiveResult received;
            try { received = await _udp.ReceiveAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            catch (SocketException) { continue; }
            if (Answer(received.Buffer) is not { } answer) continue;
            if (answer.Length > 512) answer = Truncated(answer);
            try { await _udp.SendAsync(answer, received.RemoteEndPoint, _stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
        }
    }

    async Task TcpLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _tcp.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) when (_stop.IsCancellationRequested) { return; }
            _ = Task.Run(async () =>
            {
                using var _ = client;
                var stream = client.GetStream();
                try
                {
                    var length = new byte[2];
                    await stream.ReadExactlyAsync(length, _stop.Token);
                    var query = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                    await stream.ReadExactlyAsync(query, _stop.Token);
                    if (Answer(query) is not { } answer) return;
                    BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)answer.Length);
                    await stream.WriteAsync(length, _stop.Token);
                    await stream.WriteAsync(answer, _stop.Token);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or SocketException) { }
            });
        }
    }

    // Header, the question as asked, then one record per address of the asked type.
    byte[]? Answer(byte[] query)
    {
        if (query.Length < 12) return null;
        var at = 12;
        var labels = new List<string>();
        while (at < query.Length && query[at] != 0)
        {
            int n = query[at];
            if (at + 1 + n > query.Length) return null;
            labels.Add(System.Text.Encoding.ASCII.GetString(query, at + 1, n));
            at += 1 + n;
        }
        at++; // the root label
        if (at + 4 > query.Length) return null;
        var type = BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(at));
        var questionEnd = at + 4;
        Interlocked.Increment(ref _questions);

        var name = string.Join('.', labels);
        var zone = _zones.GetValueOrDefault(name);
        var family = type == 1 ? AddressFamily.InterNetwork : type == 28 ? AddressFamily.InterNetworkV6 : (AddressFamily?)null;
        var records = zone is null || zone.Fail || family is null ? [] : zone.Addresses.Where(a => a.AddressFamily == family).ToArray();
        var rcode = zone is null ? 3 : zone.Fail ? 2 : 0; // NXDOMAIN, SERVFAIL, NOERROR

        using var answer = new MemoryStream();
        var header = new byte[12];
        query.AsSpan(0, 2).CopyTo(header); // id
        var recursionDesired = query[2] & 0x01;
        header[2] = (byte)(0x84 | recursionDesired); // QR, AA
        header[3] = (byte)rcode;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), (ushort)records.Length);
        answer.Write(header);
        answer.Write(query.AsSpan(12, questionEnd - 12));
        foreach (var address in records)
        {
            var data = address.GetAddressBytes();
            var record = new byte[12 + data.Length];
            BinaryPrimitives.WriteUInt16BigEndian(record, 0xC00C); // the name: a pointer to the question's
            BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(2), type);
            BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(4), 1); // IN
            BinaryPrimitives.WriteInt32BigEndian(record.AsSpan(6), zone!.Ttl);
            BinaryPrimitives.WriteUInt16BigEndian(record.AsSpan(10), (ushort)data.Length);
            data.CopyTo(record.AsSpan(12));
            answer.Write(record);
        }
        return answer.ToArray();
    }

    // The header (TC set, no records) and the question: "ask me over TCP".
    static byte[] Truncated(byte[] answer)
    {
        var at = 12;
        while (answer[at] != 0) at += 1 + answer[at];
        var cut = answer.AsSpan(0, at + 5).ToArray();
        cut[2] |= 0x02;
        cut[6] = cut[7] = 0;
        return cut;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Stop();
        await Task.WhenAll(_udpLoop, _tcpLoop).WaitAsync(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
