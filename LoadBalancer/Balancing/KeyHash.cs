namespace LoadBalancer.Balancing;

// A 64-bit hash that is the same in every process and on every machine (string.GetHashCode is
// randomised per process, so two balancers would disagree): FNV-1a over the bytes, then
// SplitMix64's finaliser so that keys differing in one character land far apart. Not a MAC:
// a client can choose keys that collide, which only sends its own requests to one backend
// (bounded load still spreads them). O(length), no allocation, whatever the key's size.
public static class KeyHash
{
    const ulong Offset = 14695981039346656037;
    const ulong Prime = 1099511628211;

    public static ulong Of(ReadOnlySpan<byte> bytes) => Mix(Add(Offset, bytes));

    public static ulong Of(ReadOnlySpan<char> text) => Mix(Add(Offset, text));

    /// <summary>Continues a hash over more text (several header values hash as one key).</summary>
    public static ulong Add(ulong hash, ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            hash = (hash ^ (byte)c) * Prime;
            hash = (hash ^ (byte)(c >> 8)) * Prime;
        }
        return hash;
    }

    public static ulong Add(ulong hash, ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes) hash = (hash ^ b) * Prime;
        return hash;
    }

    public static ulong Start => Offset;

    /// <summary>SplitMix64's finaliser: every input bit moves about half the output bits.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }
}
