namespace LoadBalancer.Configuration;

// The operator's files (lb.json, the PEM files it names) are read whole, but never past a limit:
// a name that points at /dev/zero, a device or a multi-gigabyte file by mistake gets a clear
// error naming the key, not a process that reads until it runs out of memory (at startup, or in a
// watcher's poll twice a second). Real ones are far smaller: lb.json with 3,000 backends is about
// 300 KB, a PEM chain a few KB, the system's whole CA bundle about 220 KB.
public static class BoundedFile
{
    public const int ConfigLimit = 16 << 20, PemLimit = 4 << 20;

    /// <summary>The file's bytes, or its first limit + 1 when it has more (see TooLarge). Throws
    /// what File.ReadAllBytes throws for a missing or unreadable file.</summary>
    public static byte[] Read(string path, int limit)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        // Length is a hint only: a device or a file being written says 0, or less than it gives.
        var buffer = new byte[(int)Math.Clamp(stream.CanSeek ? stream.Length + 1 : 4096, 1, limit + 1L)];
        var n = 0;
        while (true)
        {
            var read = stream.Read(buffer, n, buffer.Length - n);
            if (read == 0) return n == buffer.Length ? buffer : buffer[..n];
            n += read;
            if (n < buffer.Length) continue;
            if (buffer.Length > limit) return buffer; // limit + 1 bytes: too large
            Array.Resize(ref buffer, (int)Math.Min(buffer.Length * 2L, limit + 1L));
        }
    }

    public static bool TooLarge(byte[] bytes, int limit) => bytes.Length > limit;

    public static string Describe(int limit) => $"larger than {limit >> 20} MiB: not what this key names (a device, or the wrong file?)";
}
