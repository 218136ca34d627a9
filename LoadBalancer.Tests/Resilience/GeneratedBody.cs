using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;

namespace LoadBalancer.Tests.Resilience;

// A large body made on the fly, 64 KiB at a time, never held whole in memory. Every block is
// numbered, so a lost, repeated or reordered block changes the checksum.
static class GeneratedBody
{
    const int BlockSize = 64 * 1024;
    static readonly byte[] Pattern = MakePattern();

    static byte[] MakePattern()
    {
        var bytes = new byte[BlockSize];
        new Random(42).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Writes length bytes to the stream; returns their SHA-256.</summary>
    public static async Task<byte[]> WriteAsync(Stream destination, long length, CancellationToken cancellationToken = default)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var block = (byte[])Pattern.Clone();
        for (long sent = 0, i = 0; sent < length; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(block, i);
            var n = (int)Math.Min(BlockSize, length - sent);
            sha.AppendData(block, 0, n);
            await destination.WriteAsync(block.AsMemory(0, n), cancellationToken);
            sent += n;
        }
        return sha.GetHashAndReset();
    }

    /// <summary>Reads the stream to its end: how many bytes and their SHA-256.</summary>
    public static async Task<(long Length, byte[] Sha256)> ReadAsync(Stream source, CancellationToken cancellationToken = default)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[BlockSize];
        long length = 0;
        int n;
        while ((n = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            length += n;
        }
        return (length, sha.GetHashAndReset());
    }

    /// <summary>Request content that generates the body as HttpClient sends it. Without a known
    /// length it goes chunked. Sha256 is set once it has been sent.</summary>
    public sealed class Content(long size, bool knownLength) : HttpContent
    {
        public byte[]? Sha256 { get; private set; }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            Sha256 = await WriteAsync(stream, size);

        protected override bool TryComputeLength(out long length)
        {
            length = size;
            return knownLength;
        }
    }
}
