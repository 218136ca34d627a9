namespace LoadBalancer.Pipeline;

/// <summary>Records the state task hands to the JournalWriter in one channel item: the channel's
/// cost is paid per batch, not per record. Filled by the state task only, then never touched by it again.</summary>
public sealed class JournalBatch(int capacity)
{
    JournalRecord[] _items = new JournalRecord[capacity];

    public int Count { get; private set; }
    public ReadOnlySpan<JournalRecord> Records => _items.AsSpan(0, Count);

    public void Add(in JournalRecord record)
    {
        if (Count == _items.Length) Array.Resize(ref _items, _items.Length * 2);
        _items[Count++] = record;
    }

    public void Clear() => Count = 0;
}
