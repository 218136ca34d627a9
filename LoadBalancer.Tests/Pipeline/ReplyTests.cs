using System.Runtime.CompilerServices;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Pipeline;

// The pooled reply slot: misuse of a ValueTask (reading it twice, reading it before it is set)
// must throw to the one who misused it and leave the slot alone, because by then the slot may
// already belong to the next ask on this thread. `await` itself checks IsCompleted first; a
// stray `.Result` or `GetAwaiter().GetResult()` goes straight to GetResult, which is what these
// tests do to reach the paths an `await` never takes.
// Reply<int> is used by nothing else, so the per-thread cache holds only what these tests put in.
public sealed class ReplyTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    static async Task<int> OwnerAsync(ValueTask<int> answer) => await answer;

    /// <summary>Straight to GetResult, as `.Result` does; never blocks here (GetResult does not wait).</summary>
    static int Read(ValueTask<int> answer) => answer.GetAwaiter().GetResult();

    /// <summary>A slot that was asked, answered and read once: reset and parked in this thread's cache.</summary>
    static ValueTask<int> UsedOnce(out Reply<int> slot)
    {
        slot = Reply<int>.Rent();
        var answer = slot.Task;
        slot.SetResult(1);
        Assert.Equal(1, Read(answer));
        return answer;
    }

    [Fact]
    public void GetResult_ReadTwice_SecondThrowsAndTheNextOwnerOfTheSlotStillGetsItsAnswer()
    {
        var stale = UsedOnce(out var first);
        var next = Reply<int>.Rent(); // same thread: the cached slot comes back
        Assert.Same(first, next);
        var answer = next.Task;

        var e = Assert.Throws<InvalidOperationException>(() => Read(stale));

        Assert.Contains("awaited twice", e.Message);
        // The stray read did not hand the slot out again while its owner still waits on it.
        Assert.NotSame(next, Reply<int>.Rent());
        next.SetResult(2);
        Assert.True(answer.IsCompleted);
        Assert.Equal(2, Read(answer));
    }

    [Fact]
    public async Task GetResult_WhilePending_ThrowsAndTheWaitingOwnerStillGetsItsAnswer()
    {
        var slot = Reply<int>.Rent();
        var answer = slot.Task;
        var owner = OwnerAsync(answer); // awaiting: its continuation is in the slot

        var e = Assert.Throws<InvalidOperationException>(() => Read(answer));

        Assert.Contains("not been set", e.Message);
        slot.SetResult(7);
        Assert.Equal(7, await owner.WaitAsync(Deadline));
    }

    [Fact]
    public async Task GetStatus_StaleToken_ThrowsAndTheNextOwnerStillGetsItsAnswer()
    {
        var stale = UsedOnce(out var first);
        var next = Reply<int>.Rent();
        Assert.Same(first, next);
        var owner = OwnerAsync(next.Task);

        // A second `await` asks IsCompleted first, which is GetStatus with the old token.
        var e = Assert.Throws<InvalidOperationException>(() => stale.IsCompleted);

        Assert.Contains("awaited twice", e.Message);
        next.SetResult(3);
        Assert.Equal(3, await owner.WaitAsync(Deadline));
    }

    [Fact]
    public async Task OnCompleted_StaleToken_ThrowsAndDoesNotReplaceTheNextOwnersContinuation()
    {
        var stale = UsedOnce(out var first);
        var next = Reply<int>.Rent();
        Assert.Same(first, next);
        var owner = OwnerAsync(next.Task);
        var strayRan = false;

        var e = Assert.Throws<InvalidOperationException>(() =>
            ((INotifyCompletion)stale.GetAwaiter()).OnCompleted(() => strayRan = true));

        Assert.Contains("awaited twice", e.Message);
        next.SetResult(4);
        Assert.Equal(4, await owner.WaitAsync(Deadline));
        Assert.False(strayRan);
    }
}
