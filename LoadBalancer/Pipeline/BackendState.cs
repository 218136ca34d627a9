using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Pipeline;

// Stage 3, the single owner of all backend state. Reads events (probe results, request
// outcomes, connection counts, new and rejected configurations) and requests (picks, probe
// plans, status, explain, events, drain) and applies them to the BackendTable; with journal.path
// set it also TryWrites each applied message, with its answer, to the journal (never waiting). Nothing else reads or writes that state,
// so there is no lock anywhere: a handler that wants a backend asks here and waits for the reply.
// It never awaits I/O: one slow thing here would stall every request.
//
//   Go:  for { select { case e := <-events: table.Apply(e); case r := <-requests: r.reply <- table.Answer(r) } }
//
// Stops when both channels are completed and drained: StopAsync completes them after Kestrel
// has drained its requests, so late outcomes are still counted and late picks still answered.
// Then, as the loop's last act, it closes every backend's connection pool.
public sealed class BackendState : BackgroundService
{
    readonly ChannelReader<StateEvent> _events;
    readonly ChannelReader<StateRequest> _requests;
    readonly ChannelWriter<StateEvent> _eventsWriter;
    readonly ChannelWriter<StateRequest> _requestsWriter;
    readonly BackendTable _table;
    readonly ILogger _log;
    readonly ITimer _wakeTimer;
    readonly StateClock? _clock;
    readonly Journal? _journalStandby; // the journal stage's end, on or off (journal.path may change on reload)
    Journal? _journal;                 // the same while journal.path is set, else null: nothing recorded
    DateTimeOffset _wakeAt = DateTimeOffset.MaxValue;

    /// <param name="clock">The table's clock, read once per batch (null: the table reads its own).</param>
    /// <param name="journal">Where every applied message goes, with its answer (null: no journal, ever).</param>
    /// <param name="journalOn">Whether it records from the start (journal.path set); a reload may turn it on or off.</param>
    public BackendState(PipelineChannels channels, BackendTable table, TimeProvider time, ILogger<BackendState> log,
        StateClock? clock = null, Journal? journal = null, bool journalOn = true)
    {
        _time = time;
        _clock = clock;
        _journalStandby = journal;
        _journal = journalOn ? journal : null;
        if (journal is not null) table.Answered = OnAnswered;
        _events = channels.Events.Reader;
        _requests = channels.Requests.Reader;
        _eventsWriter = channels.Events.Writer;
        _requestsWriter = channels.Requests.Writer;
        _table = table;
        _log = log;
        // The loop never sleeps: one timer tells it (through its own events channel) when its
        // next deadline is due (an ejection ends, a queued pick times out), so that happens on
        // time even when no message comes. Never a timer per waiter.
        // If events is full the loop is busy anyway and checks ejections after that batch.
        var wake = _eventsWriter;
        _wakeTimer = time.CreateTimer(_ => wake.TryWrite(Wake.Instance), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public BackendTable Table => _table;

    // Waits without the stopping token on purpose: requests still draining through Kestrel need
    // answers after the host has begun to stop. The channels' completion ends the loop instead.
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(RunAsync, CancellationToken.None);

    async Task RunAsync()
    {
        var select = new Select<StateEvent, StateRequest>(_events, _requests);
        try
        {
            while (await select.WaitAsync().ConfigureAwait(false))
            {
                _clock?.Advance(); // one reading for the whole batch (and for the journal)
                var busySince = System.Diagnostics.Stopwatch.GetTimestamp(); // the wait is over: busy from here
                // Events first, so the picks of this batch see the freshest health.
                while (_events.TryRead(out var e)) { Counters.Count(e); Handle(e); }
                while (_requests.TryRead(out var r)) { Counters.Count(r); Handle(r); }
                EndBatch(); Counters.Turn(busySince);
            }
            // Both channels are closed and drained: no message can come that needs a timer or a
            // pool. Done here, on the loop, not in StopAsync: the loop owns both, and a stop that
            // ran out of time returns before the loop has drained.
            _wakeTimer.Dispose();
            Close(); // no slot will free any more: waiters left get their answer now
            _table.DisposeRoutes();
            _journalStandby?.Complete();
        }
        catch (Exception ex)
        {
            // Only a bug in this loop itself gets here (each message is isolated below). Fail
            // loudly and make sure nobody waits forever for an answer that will never come.
            Log.StateTaskDied(_log, ex);
            _requestsWriter.TryComplete(ex);
            _eventsWriter.TryComplete(ex);
            _journalStandby?.Complete();
            while (_requests.TryRead(out var r)) Fail(r, ex);
            _table.CloseQueue(ex);
            Environment.ExitCode = 1;
            throw;
        }
    }

    readonly TimeProvider _time;

    // journalWaiting: records wait in the journal's batch; the loop must come round within
    // Journal.HandOverEvery to hand them over, even if no message comes.
    void ArmWakeTimer(bool journalWaiting)
    {
        var next = _table.NextDeadline;
        if (journalWaiting)
        {
            var now = _time.GetUtcNow();
            var handOver = now + Journal.HandOverEvery;
            if (_wakeAt > now && _wakeAt <= handOver && _wakeAt <= next) return; // armed to fire soon enough, and nothing is due sooner
            if (handOver < next) next = handOver;
        }
        if (next == _wakeAt) return;
        _wakeAt = next;
        // Whole ms, rounded up: Timer truncates to whole ms, which would wake the loop too early.
        var due = next == DateTimeOffset.MaxValue ? Timeout.InfiniteTimeSpan
            : TimeSpan.FromMilliseconds(Math.Max(0, Math.Ceiling((next - _time.GetUtcNow()).TotalMilliseconds)));
        _wakeTimer.Change(due, Timeout.InfiniteTimeSpan);
    }

    // The end of a batch: end the ejections that are due, answer or serve the queued picks,
    // publish the gauges, hand the journal's records over (or not yet), set the wake timer. Journaled only when it could act (an ejection due,
    // a pick queued): otherwise it is a no-op, in the replay too.
    internal void EndBatch()
    {
        if (_journal is not null && _clock is not null && (_table.QueueLength > 0 || _table.NextEjectionEnd <= _clock.Now))
            _journal.Record(new JournalEntry.EjectionsDue());
        _table.Tick();
        _table.PublishGauges();
        ArmWakeTimer(_journal?.EndTurn() ?? false);
    }

    // With the journal on, each message is recorded before it is applied (JournalEntry.cs), and
    // each answer when it is given: a pick's through the table's Answered hook (OnAnswered), now
    // or later from the queue. internal: the journal's round-trip test drives these directly.
    internal void Handle(StateEvent e)
    {
        try
        {
            switch (e)
            {
                case RequestOutcome o:
                    _journal?.Outcome(o);
                    _table.Apply(o);
                    break;
                case ProbeResult p:
                    Log.ProbeResult(_log, p.Backend.Url, p.Status, p.Latency.TotalMilliseconds, p.Error);
                    _journal?.Record(JournalEntry.Probed.Of(p));
                    _table.Apply(p);
                    break;
                case ConnectionsChanged c:
                    var delta = c.Backend.Connections.Take(); // always, even for a route that is gone: it re-arms the notification
                    if (delta != 0) _journal?.Record(new JournalEntry.ConnectionsMoved(c.Backend.Id, delta));
                    _table.ApplyConnections(c.Backend.Id, delta);
                    break;
                case PickCancelled c:
                    if (_journal is not null && _queued.TryGetValue(c.Waiter.Request, out var cancelled)) _journal.Record(new JournalEntry.Cancelled(cancelled));
                    _table.Apply(c);
                    break;
                // Tick() after the batch does the work. The one-shot timer has fired and is
                // unarmed now: forget _wakeAt, or a wake that comes early (the timer runs on a
                // coarser clock than GetUtcNow) finds the deadline not over and never re-arms.
                case Wake: _wakeAt = DateTimeOffset.MaxValue; break;
                case ConfigChanged c:
                    var journalBefore = _table.Config.Journal;
                    _journal?.Record(new JournalEntry.Reloaded(c.Config));
                    var changes = _table.Reconcile(c.Config);
                    Log.ReloadApplied(_log, c.Config.Backends.Count, c.Config.Balancing, changes);
                    if (c.Config.Journal != journalBefore) SwitchJournal(c.Config.Journal.On);
                    break;
                case ConfigRejected r:
                    _journal?.Record(new JournalEntry.ReloadRejected(r.Problem));
                    _table.Reject(r.Problem); // the watcher has logged it
                    break;
                case CheckpointWanted:
                    Checkpoint(); // nothing when the journal is off (a reload may have turned it off since the ask)
                    break;
                case MembershipChanged m: // the resolver has logged a failed lookup
                    _journal?.Record(new JournalEntry.Resolved(m.Backend, m.Addresses, m.Error));
                    _table.Apply(m);
                    break;
            }
        }
        catch (Exception ex)
        {
            Log.MessageFailed(_log, e.GetType().Name, ex);
        }
    }

    internal void Handle(StateRequest r)
    {
        try
        {
            switch (r)
            {
                case PickRequest p:
                    if (_journal is not null)
                    {
                        (_picking, _pickingId) = (p, ++_picks);
                        _journal.Pick(_pickingId, p.Exclude, p.Key);
                    }
                    if (_table.Pick(p) is { } waiter)
                    {
                        if (_journal is not null) _queued[p] = _pickingId;
                        if (p.Aborted.CanBeCanceled) Watch(waiter, p.Aborted);
                    }
                    _picking = null;
                    break;
                case ProbePlanRequest p:
                    _journal?.Record(new JournalEntry.Plan());
                    var plan = _table.ProbePlan();
                    _journal?.Record(JournalEntry.Planned.Of(plan));
                    p.Reply.TrySetResult(plan);
                    break;
                case StatusRequest s:
                    _journal?.Record(new JournalEntry.StatusTaken());
                    s.Reply.TrySetResult(_table.Snapshot());
                    break;
                case ExplainRequest x:
                    _journal?.Record(new JournalEntry.Explained());
                    x.Reply.TrySetResult(_table.Explain());
                    break;
                case EventsRequest ev: ev.Reply.TrySetResult(_table.Events.Since(ev.Since)); break; // reads only: not journaled
                case DrainRequest d:
                    if (Admin.AdminAuth.Check(_table.Config.AdminToken, d.Authorization, d.Loopback) is { } refused)
                    {
                        d.Reply.TrySetResult(refused); // nothing changed: not journaled
                        break;
                    }
                    _journal?.Record(new JournalEntry.Drain(d.Url, d.Drain));
                    var found = _table.Drain(d.Url, d.Drain);
                    _journal?.Record(new JournalEntry.Drained(found));
                    d.Reply.TrySetResult(found ? DrainAnswer.Done : DrainAnswer.UnknownBackend);
                    break;
                case DiscoveryPlanRequest d:
                    _journal?.Record(new JournalEntry.DiscoveryPlan());
                    var discovery = _table.DiscoveryPlan();
                    _journal?.Record(JournalEntry.DiscoveryPlanned.Of(discovery));
                    d.Reply.TrySetResult(discovery);
                    break;
            }
        }
        catch (Exception ex)
        {
            // The asker gets the exception instead of an answer; the loop goes on.
            Log.MessageFailed(_log, r.GetType().Name, ex);
            Fail(r, ex);
        }
    }

    internal void Close()
    {
        _journal?.Record(new JournalEntry.Closed());
        _table.CloseQueue();
    }

    // Journal only: picks are numbered 1, 2, 3...; the one being handled, and the queued ones by request.
    long _picks, _pickingId;
    PickRequest? _picking;
    readonly Dictionary<PickRequest, long> _queued = new(ReferenceEqualityComparer.Instance);

    // The table as it is now, whole, with a fresh seed for its policies: a journal file that begins
    // here replays alone (JournalWriter starts a file with it: at rotation, or for a new journal.path).
    void Checkpoint()
    {
        if (_journal is null || _clock is null) return;
        var seed = Random.Shared.Next();
        _table.Reseed(seed);
        _journal.Record(new JournalEntry.Checkpoint(JournalEntry.Version, _clock.Now, seed, _table.Config,
            _table.Checkpoint(p => _queued.TryGetValue(p, out var id) ? id : 0)));
    }

    // A reload changed journal.*: on, the journal (re)starts with a checkpoint that carries the new
    // settings (the writer opens the new file for it); off, the reload's record, which says so, is
    // the last (handed over now: the writer closes the file after it).
    void SwitchJournal(bool on)
    {
        if (_journalStandby is null) return;
        if (on)
        {
            _journal = _journalStandby;
            Checkpoint();
        }
        else if (_journal is not null)
        {
            _journal.Flush();
            _journal = null;
        }
    }

    void OnAnswered(PickRequest p, Pick pick)
    {
        long id;
        if (ReferenceEquals(p, _picking)) id = _pickingId;
        else if (!_queued.Remove(p, out id)) return;
        _journal?.Answer(id, pick.Backend?.Id, pick.Refused);
    }

    // A queued pick's client may leave while it waits: its abort tells this loop (PickCancelled),
    // which takes it out of the queue without a slot. The callback runs on the aborting thread
    // and only writes the message; if the waiter was answered first, the message is ignored.
    void Watch(Waiter waiter, CancellationToken aborted) =>
        waiter.Registration = aborted.UnsafeRegister(static state =>
        {
            var (events, w) = ((ChannelWriter<StateEvent>, Waiter))state!;
            var e = new PickCancelled(w);
            if (!events.TryWrite(e)) _ = WriteLaterAsync(events, e);
        }, (_eventsWriter, waiter));

    static async Task WriteLaterAsync(ChannelWriter<StateEvent> events, StateEvent e)
    {
        try { await events.WriteAsync(e).ConfigureAwait(false); }
        catch (ChannelClosedException) { } // stopping: CloseQueue answers every waiter
    }

    static void Fail(StateRequest r, Exception ex)
    {
        switch (r)
        {
            case PickRequest p: p.Reply.SetException(ex); break;
            case ProbePlanRequest p: p.Reply.TrySetException(ex); break;
            case DiscoveryPlanRequest d: d.Reply.TrySetException(ex); break;
            case StatusRequest s: s.Reply.TrySetException(ex); break;
            case ExplainRequest x: x.Reply.TrySetException(ex); break;
            case EventsRequest ev: ev.Reply.TrySetException(ex); break;
            case DrainRequest d: d.Reply.TrySetException(ex); break;
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // The reader closes its own inbox, which Go would not allow (a send on a closed channel
        // panics there); here a late write just fails, and every writer expects that. The loop
        // drains what is queued and ends. Kestrel has stopped by now (it stops first).
        _requestsWriter.TryComplete();
        _eventsWriter.TryComplete();
        if (ExecuteTask is { } running)
        {
            try
            {
                await running.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The shutdown timeout is spent (Kestrel used it up and cut what was left). That
                // is a normal stop, not a failed one: the loop needs no token, it drains what is
                // queued and ends on its own; the host just stops waiting for it.
            }
        }
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>What this loop has taken and how busy it is, counted by the loop itself (for the dashboard).</summary>
    public LoopCounters Counters { get; } = new();
}
