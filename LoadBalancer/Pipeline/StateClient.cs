using System.Threading.Channels;

namespace LoadBalancer.Pipeline;

// How everyone else talks to BackendState: ask (a request with a reply slot) or tell (an event).
// Holds only the writing ends of the two channels.
public sealed class StateClient(ChannelWriter<StateEvent> events, ChannelWriter<StateRequest> requests)
{
    public StateClient(PipelineChannels channels) : this(channels.Events.Writer, channels.Requests.Writer) { }

    /// <summary>The hot path, once per request: no allocation but the request itself.
    /// aborted: the client's RequestAborted; should the pick have to queue, it leaves the queue
    /// when the client does (answered with Refusal.Cancelled). key: its hash key and affinity cookie.</summary>
    public ValueTask<Pick> PickAsync(BackendRoute[]? exclude = null, CancellationToken aborted = default, RequestKey key = default)
    {
        var reply = Reply<Pick>.Rent();
        var answer = reply.Task;
        var request = new PickRequest(exclude, reply, aborted, key);
        return requests.TryWrite(request) ? answer : WaitForRoomAsync(request, answer);
    }

    async ValueTask<Pick> WaitForRoomAsync(PickRequest request, ValueTask<Pick> answer)
    {
        await requests.WriteAsync(request).ConfigureAwait(false);
        return await answer.ConfigureAwait(false);
    }

    public Task<ProbePlan> ProbePlanAsync() => AskAsync<ProbePlan>(reply => new ProbePlanRequest(reply));

    public Task<DiscoveryPlan> DiscoveryPlanAsync() => AskAsync<DiscoveryPlan>(reply => new DiscoveryPlanRequest(reply));

    public Task<StatusSnapshot> StatusAsync() => AskAsync<StatusSnapshot>(reply => new StatusRequest(reply));

    public Task<Explanation> ExplainAsync() => AskAsync<Explanation>(reply => new ExplainRequest(reply));

    public Task<EventsPage> EventsAsync(long since) => AskAsync<EventsPage>(reply => new EventsRequest(since, reply));

    public Task<DrainAnswer> DrainAsync(string url, bool drain, string? authorization, bool loopback) =>
        AskAsync<DrainAnswer>(reply => new DrainRequest(url, drain, authorization, loopback, reply));

    /// <summary>Tell without waiting when there is room (the usual case), else wait for room.</summary>
    public ValueTask TellAsync(StateEvent e) => events.TryWrite(e) ? ValueTask.CompletedTask : events.WriteAsync(e);

    /// <summary>A pooled connection of route opened (+1) or closed (-1). For synchronous callers
    /// (the pool's connect callback, a stream's Dispose): never blocks, never throws.</summary>
    public void TellConnection(BackendRoute route, int delta)
    {
        // Coalesced (see PendingConnections): when this route's notification is already queued,
        // the delta rides along with it. So even when events is full, at most one write per
        // route waits for room: memory bounded by the number of backends, not by churn.
        if (!route.Connections.Add(delta)) return;
        var e = new ConnectionsChanged(route);
        if (!events.TryWrite(e)) _ = WriteLaterAsync(e);
    }

    async Task WriteLaterAsync(StateEvent e)
    {
        try { await events.WriteAsync(e).ConfigureAwait(false); }
        catch (ChannelClosedException) { } // shutting down: nobody is counting any more
    }

    async Task<T> AskAsync<T>(Func<TaskCompletionSource<T>, StateRequest> make)
    {
        // RunContinuationsAsynchronously: the asker must not resume on the state task's thread.
        var reply = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var request = make(reply);
        if (!requests.TryWrite(request)) await requests.WriteAsync(request).ConfigureAwait(false);
        return await reply.Task.ConfigureAwait(false);
    }

    /// <summary>A handler's last word about its attempt (the outcome that releases its slot).
    /// A request cut at the very end of a stop may finish after the state task has closed its
    /// inbox: nobody counts any more then, so that is not an error.</summary>
    public ValueTask TellOutcomeAsync(RequestOutcome e) =>
        events.TryWrite(e) ? ValueTask.CompletedTask : new ValueTask(WriteLaterAsync(e));
}
