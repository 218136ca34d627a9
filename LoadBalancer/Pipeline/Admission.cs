namespace LoadBalancer.Pipeline;

// The deadline queue of picks (issue 12): when every eligible backend is at its in-flight limit,
// a pick waits here, oldest first, until a slot frees (BackendTable hands it over in the same
// loop turn), its deadline passes (queue.timeout) or its client leaves. Plain state owned by the
// state task: no timer per waiter (the state task's one timer wakes it for NextDeadline), no lock.
//
// Deadlines are in queue order, so the oldest waiter always has the nearest deadline: every
// waiter gets the same queue.timeout, and a reload that shortens it shortens the waiting ones'
// too (Shorten), which keeps the order.
public sealed class AdmissionQueue
{
    readonly LinkedList<Waiter> _waiters = new();
    long _nextId;

    public int Count => _waiters.Count;

    /// <summary>The oldest waiter's deadline (MaxValue: nobody waits).</summary>
    public DateTimeOffset NextDeadline => _waiters.First?.Value.Deadline ?? DateTimeOffset.MaxValue;

    /// <summary>The oldest waiter's node (walk on with Next), or null.</summary>
    public LinkedListNode<Waiter>? First => _waiters.First;

    public Waiter Enqueue(PickRequest request, DateTimeOffset now, TimeSpan timeout) => Restore(request, now, now + timeout, ++_nextId);

    /// <summary>The last waiter's id (a checkpoint's).</summary>
    public long LastId { get => _nextId; set => _nextId = value; }

    /// <summary>A waiter as a checkpoint had it (and Enqueue's work), at the end of the queue.</summary>
    public Waiter Restore(PickRequest request, DateTimeOffset enqueued, DateTimeOffset deadline, long id)
    {
        var waiter = new Waiter(id, request, enqueued, deadline);
        waiter.Node = _waiters.AddLast(waiter);
        return waiter;
    }

    /// <summary>Takes a waiter out (answered, expired or cancelled). Its node is gone, so a late
    /// cancel for it finds nothing.</summary>
    public void Remove(Waiter waiter)
    {
        if (waiter.Node is not { } node) return;
        _waiters.Remove(node);
        waiter.Node = null;
        waiter.Registration.Unregister(); // never Dispose: it would wait for a callback running elsewhere
    }

    /// <summary>The oldest waiter when its deadline has passed, else null.</summary>
    public Waiter? Expired(DateTimeOffset now) => _waiters.First?.Value is { } w && w.Deadline <= now ? w : null;

    /// <summary>A reload shortened queue.timeout: it applies to the waiting ones too.</summary>
    public void Shorten(TimeSpan timeout)
    {
        foreach (var w in _waiters)
            if (w.Enqueued + timeout < w.Deadline) w.Deadline = w.Enqueued + timeout;
    }
}

/// <summary>A pick waiting in the queue. Only the state task reads or writes it; the abort
/// callback only carries the reference back (PickCancelled).</summary>
public sealed class Waiter(long id, PickRequest request, DateTimeOffset enqueued, DateTimeOffset deadline)
{
    /// <summary>Numbers waiters in queue order (for logs and journals).</summary>
    public long Id { get; } = id;
    public PickRequest Request { get; } = request;
    public DateTimeOffset Enqueued { get; } = enqueued;
    public DateTimeOffset Deadline { get; internal set; } = deadline;

    /// <summary>True while it is in the queue; false once answered.</summary>
    public bool Waiting => Node is not null;

    internal LinkedListNode<Waiter>? Node { get; set; }

    /// <summary>The client's abort callback (set by the state loop), unregistered when it leaves.</summary>
    internal CancellationTokenRegistration Registration { get; set; }

    public override string ToString() => $"waiter {Id}";
}
