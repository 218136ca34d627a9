#!/usr/bin/env -S dotnet run
#:sdk Microsoft.NET.Sdk.Web
#:property TreatWarningsAsErrors=true
// The snippets of docs/csharp-async-for-go.md, each one runnable:
//   dotnet run docs/primer/primer.cs -- go         one section
//   dotnet run docs/primer/primer.cs               all of them, in order
// Every output line is deterministic: RunnableDocsTests runs each section and compares its
// output with the page.
using System.Threading.Channels;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

var sections = new Dictionary<string, Func<Task>>
{
    ["go"] = Go,
    ["waitgroup"] = WaitGroup,
    ["channels"] = Channels,
    ["unbuffered"] = Unbuffered,
    ["select"] = Select,
    ["ticker"] = Ticker,
    ["context"] = Context,
    ["timeout"] = Timeout_,
    ["panic"] = Panic,
    ["valuetask"] = ValueTasks,
    ["host"] = HostAsErrgroup,
    ["configureawait"] = ConfigureAwaitFalse,
    ["defer"] = Defer,
    ["typeswitch"] = TypeSwitch,
    ["records"] = Records,
};
if (args.Any(a => !sections.ContainsKey(a)))
{
    Console.Error.WriteLine($"usage: primer.cs [{string.Join(" | ", sections.Keys)}]...");
    return 2;
}
foreach (var name in args.Length == 0 ? sections.Keys.ToArray() : args)
{
    if (args.Length != 1) Console.WriteLine($"== {name}");
    await sections[name]();
}
return 0;

static async Task Go()
{
    var caller = Thread.CurrentThread;
    var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    var work = WorkAsync(); // runs right here, on this thread, up to its first await that must wait
    Console.WriteLine("2. the call returned a Task: WorkAsync is parked at its await");
    gate.SetResult();
    await work;

    var go = Task.Run(() => Console.WriteLine($"4. Task.Run(f), Go's go f(): on a thread-pool thread: {Thread.CurrentThread.IsThreadPoolThread}"));
    await go; // a goroutine has no handle; a Task is one: await it to know it ended, and how

    async Task WorkAsync()
    {
        Console.WriteLine($"1. WorkAsync starts on the caller's thread: {Thread.CurrentThread == caller}");
        await gate.Task;
        Console.WriteLine($"3. and resumes, after the await, on a thread-pool thread: {Thread.CurrentThread.IsThreadPoolThread}");
    }
}

static async Task WaitGroup()
{
    var squares = new int[4];
    var tasks = new Task[4];
    for (var i = 0; i < tasks.Length; i++)
    {
        var n = i;
        tasks[n] = Task.Run(() => squares[n] = n * n); // wg.Add(1); go func() { defer wg.Done(); ... }()
    }
    await Task.WhenAll(tasks);                         // wg.Wait()
    Console.WriteLine($"squares: {string.Join(" ", squares)}");

    // errgroup.Wait(): the first error comes out, after every task has ended.
    var round = new[] { Task.Run(() => 1), Task.Run(int () => throw new InvalidOperationException("probe 2 failed")) };
    try
    {
        await Task.WhenAll(round);
    }
    catch (InvalidOperationException e)
    {
        Console.WriteLine($"WhenAll threw: {e.Message}; the other ran to completion: {round[0].IsCompletedSuccessfully}");
    }
}

static async Task Channels()
{
    var ch = Channel.CreateBounded<int>(2);                        // ch := make(chan int, 2)
    var producer = Task.Run(async () =>                            // go func() {
    {
        for (var i = 1; i <= 3; i++) await ch.Writer.WriteAsync(i); //     ch <- i   (waits while full)
        ch.Writer.TryComplete();                                   //     close(ch)
    });                                                            // }()
    await foreach (var v in ch.Reader.ReadAllAsync())              // for v := range ch {
        Console.WriteLine($"got {v}");
    await producer;
    var ok = await ch.Reader.WaitToReadAsync();                    // _, ok := <-ch
    Console.WriteLine($"ok: {ok} (closed and drained)");
}

static async Task Unbuffered()
{
    var ch = Channel.CreateBounded<int>(0);                  // ch := make(chan int): a rendezvous, since .NET 10
    Console.WriteLine($"TryWrite, no reader waiting: {ch.Writer.TryWrite(1)}");
    var read = ch.Reader.ReadAsync();                        // a receiver is waiting...
    Console.WriteLine($"TryWrite, a reader waiting: {ch.Writer.TryWrite(2)}; it got {await read}");
    var write = ch.Writer.WriteAsync(3);                     // ch <- 3 waits for a receiver
    Console.WriteLine($"WriteAsync waits: {!write.IsCompleted}");
    Console.WriteLine($"ReadAsync meets it: {await ch.Reader.ReadAsync()}");
    await write;
}

static async Task Select()
{
    var events = Channel.CreateBounded<string>(8);
    var requests = Channel.CreateBounded<string>(8);
    requests.Writer.TryWrite("pick");
    events.Writer.TryWrite("probe a: up");
    events.Writer.TryComplete();
    requests.Writer.TryComplete();

    var never = new TaskCompletionSource<bool>().Task;                  // a nil channel: never ready
    var e = events.Reader.WaitToReadAsync().AsTask();
    var r = requests.Reader.WaitToReadAsync().AsTask();
    while (e != never || r != never)                                    // for events != nil || requests != nil {
    {
        await Task.WhenAny(e, r);                                       //     select {
        while (events.Reader.TryRead(out var ev)) Console.WriteLine($"event: {ev}");      // case ev := <-events:
        while (requests.Reader.TryRead(out var rq)) Console.WriteLine($"request: {rq}");  // case rq := <-requests:
        if (e.IsCompleted) e = await e ? events.Reader.WaitToReadAsync().AsTask() : never; // closed: events = nil
        if (r.IsCompleted) r = await r ? requests.Reader.WaitToReadAsync().AsTask() : never;
    }
    Console.WriteLine("both closed");

    var quiet = Channel.CreateBounded<string>(1);
    Console.WriteLine($"select with default: got one: {quiet.Reader.TryRead(out _)}"); // select { case v := <-quiet: ... default: }
    try
    {
        await quiet.Reader.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromMilliseconds(20)); // case <-time.After(20 * time.Millisecond):
    }
    catch (TimeoutException)
    {
        Console.WriteLine("select with a timeout: timed out");
    }
}

static async Task Ticker()
{
    using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10)); // ticker := time.NewTicker(10 * time.Millisecond)
    var n = 0;
    while (await timer.WaitForNextTickAsync())                          // for range ticker.C {
    {
        Console.WriteLine($"tick {++n}");
        if (n == 3) timer.Dispose();                                    // ticker.Stop(), and the loop ends too
    }
    Console.WriteLine("stopped");
}

static async Task Context()
{
    using var stop = new CancellationTokenSource();       // ctx, cancel := context.WithCancel(context.Background())
    var worker = Task.Run(async () =>
    {
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token); // select { case <-ctx.Done(): }
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine($"worker: cancelled, token says {stop.Token.IsCancellationRequested}"); // ctx.Err() != nil
        }
    });
    stop.Cancel();                                         // cancel()
    await worker;

    using var other = new CancellationTokenSource();
    using var onCancel = other.Token.Register(() => Console.WriteLine("Register: runs when cancelled")); // go func() { <-ctx.Done(); ... }()
    other.Cancel();
}

static async Task Timeout_()
{
    var time = TimeProvider.System; // tests pass a FakeTimeProvider here
    using var caller = new CancellationTokenSource();
    using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(20), time); // context.WithTimeout(ctx, 20ms)
    using var linked = CancellationTokenSource.CreateLinkedTokenSource(caller.Token, deadline.Token);
    try
    {
        await Task.Delay(Timeout.Infinite, linked.Token);
    }
    catch (OperationCanceledException) when (!caller.IsCancellationRequested) // ctx.Err() == context.DeadlineExceeded
    {
        Console.WriteLine("timed out, and the caller did not cancel");
    }
}

static async Task Panic()
{
    var failed = Task.Run(() => throw new InvalidOperationException("boom")); // a goroutine that panics
    await Task.WhenAny(failed); // waits for it without looking at its exception
    Console.WriteLine($"the process goes on; the task is {failed.Status}: {failed.Exception!.InnerException!.Message}");
    try
    {
        await failed;
    }
    catch (InvalidOperationException e)
    {
        Console.WriteLine($"await rethrows it: {e.Message}");
    }
}

static async Task ValueTasks()
{
    var channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
    var read = channel.Reader.ReadAsync(); // a ValueTask, here backed by an object the channel reuses
    channel.Writer.TryWrite(5);
    Console.WriteLine($"first await: {await read}");
    try
    {
        await read;
    }
    catch (InvalidOperationException)
    {
        Console.WriteLine("second await: InvalidOperationException");
    }
    var task = channel.Reader.ReadAsync().AsTask(); // need it twice? make a Task once
    channel.Writer.TryWrite(6);
    Console.WriteLine($"a Task awaits twice: {await task} {await task}");
}

static async Task HostAsErrgroup()
{
    var builder = Host.CreateApplicationBuilder();
    builder.Logging.ClearProviders();
    builder.Services.AddHostedService<Patient>(); // g.Go(patient)
    builder.Services.AddHostedService<Failing>(); // g.Go(failing)
    using var host = builder.Build();
    await host.RunAsync();                        // g.Wait(), and until SIGTERM or Ctrl+C
    Console.WriteLine($"RunAsync returned; the exit code is still {Environment.ExitCode}");
}

static async Task ConfigureAwaitFalse()
{
    var context = new CountingContext(); // what a UI thread has; ASP.NET Core and console apps have none
    SynchronizationContext.SetSynchronizationContext(context);
    await Task.Delay(1);
    Console.WriteLine($"await: resumed through the context, posts {context.Posts}");
    await Task.Delay(1);
    Console.WriteLine($"await: again, posts {context.Posts}");
    await Task.Delay(1).ConfigureAwait(false);
    Console.WriteLine($"ConfigureAwait(false): not through it, posts {context.Posts}");
    SynchronizationContext.SetSynchronizationContext(null);
}

static async Task Defer()
{
    await using var pool = new Noisy("pool (await using: async cleanup)");
    using (var outer = new Noisy("outer"))
    {
        using var inner = new Noisy("inner"); // defer inner.Close()
        Console.WriteLine("body");
    }                                         // the end of the scope: inner, then outer
    try
    {
        Console.WriteLine("try");
    }
    finally
    {
        Console.WriteLine("finally: any code, like defer func() { ... }()");
    }
    Console.WriteLine("end of the method");
}

static Task TypeSwitch()
{
    Message[] inbox = [new ProbeResult("a", 200), new ProbeResult("b", 503), new RequestOutcome("a", Failed: false), new Wake()];
    foreach (var m in inbox)
    {
        var text = m switch                                        // switch m := m.(type) {
        {
            ProbeResult { Status: >= 200 and < 300 } p => $"{p.Backend} passed", // case ProbeResult: if ... {
            ProbeResult p => $"{p.Backend} failed with {p.Status}",
            RequestOutcome o => $"{o.Backend} {(o.Failed ? "failed" : "answered")}",
            _ => $"something else: {m.GetType().Name}",            // default:
        };
        Console.WriteLine(text);
    }
    return Task.CompletedTask;
}

static Task Records()
{
    var a = new Point(1, 2);
    var b = new Point(1, 2);
    Console.WriteLine($"a == b: {a == b}");  // value equality, like comparable Go structs
    var c = a with { Y = 3 };                // a copy with one field changed; a stays as it was
    Console.WriteLine($"a: {a}, c: {c}");
    var s = new Pair(1, 2);                  // a record struct: a value, copied on assignment, like a Go struct
    var t = s;
    t.Right = 5;
    Console.WriteLine($"s: {s}, t: {t}");
    return Task.CompletedTask;
}

sealed class Patient : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine("patient: the stopping token fired (errgroup's ctx.Done())");
        }
    }
}

sealed class Failing : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Console.WriteLine("failing: throws");
        throw new InvalidOperationException("boom"); // the host stops every service
    }
}

sealed class CountingContext : SynchronizationContext
{
    public int Posts;

    public override void Post(SendOrPostCallback callback, object? state)
    {
        Interlocked.Increment(ref Posts);
        base.Post(_ =>
        {
            SetSynchronizationContext(this); // the continuation runs "on" this context
            try { callback(state); }
            finally { SetSynchronizationContext(null); }
        }, null);
    }
}

sealed class Noisy(string name) : IDisposable, IAsyncDisposable
{
    public void Dispose() => Console.WriteLine($"dispose {name}");
    public ValueTask DisposeAsync() { Dispose(); return ValueTask.CompletedTask; }
}

abstract record Message;
sealed record ProbeResult(string Backend, int Status) : Message;
sealed record RequestOutcome(string Backend, bool Failed) : Message;
sealed record Wake : Message;
record Point(int X, int Y);
record struct Pair(int Left, int Right);
