using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Pipeline;

// One handler's pick as the state task sees it (a PickRequest with its reply slot and its
// client's abort token), for tests that call BackendTable.Pick directly. The answer is read
// once and kept: the slot goes back to its pool when read, as it does for a real handler.
public sealed class Ask
{
    readonly ValueTask<Pick> _answer;
    readonly CancellationTokenSource _client = new();
    Pick? _read;

    public Ask(BackendRoute[]? exclude = null, RequestKey key = default)
    {
        var reply = Reply<Pick>.Rent();
        _answer = reply.Task;
        Request = new PickRequest(exclude, reply, _client.Token, key);
    }

    public PickRequest Request { get; }

    /// <summary>What BackendTable.Pick returned: the waiter when it queued.</summary>
    public Waiter? Waiter { get; set; }

    public bool Answered => _read is not null || _answer.IsCompleted;

    public Pick Answer => _read ??= _answer.IsCompleted ? _answer.Result : throw new InvalidOperationException("not answered yet");

    public string? Backend => Answer.Backend?.Url;

    /// <summary>The client goes away (RequestAborted fires).</summary>
    public void Abort() => _client.Cancel();

    public static Ask Send(BackendTable table, BackendRoute[]? exclude = null, RequestKey key = default)
    {
        var ask = new Ask(exclude, key);
        ask.Waiter = table.Pick(ask.Request);
        return ask;
    }
}
