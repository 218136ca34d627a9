#!/usr/bin/env -S dotnet run
#:property TreatWarningsAsErrors=true
// The channel and task traps of docs/traps/README.md, each one runnable (Go by Example style).
//   dotnet run docs/traps/traps.cs -- readasync-whenany     one trap
//   dotnet run docs/traps/traps.cs                          all of them, in order
// Every output line is deterministic: TrapsTests runs each trap and compares its output with
// the README.
using System.Threading.Channels;

var traps = new Dictionary<string, Func<Task>>
{
    ["readasync-whenany"] = ReadAsyncInsideWhenAny,
    ["inline-continuation"] = InlineContinuation,
    ["dropwrite-true"] = DropWriteReturnsTrue,
    ["full-modes"] = FullModes,
    ["second-wait"] = SecondWait,
    ["read-closed"] = ReadAfterClose,
    ["write-closed"] = WriteAfterClose,
};
if (args.Any(a => !traps.ContainsKey(a)))
{
    Console.Error.WriteLine($"usage: traps.cs [{string.Join(" | ", traps.Keys)}]...");
    return 2;
}
foreach (var name in args.Length == 0 ? traps.Keys.ToArray() : args)
{
    if (args.Length != 1) Console.WriteLine($"== {name}");
    await traps[name]();
}
return 0;

static async Task ReadAsyncInsideWhenAny()
{
    var a = Channel.CreateUnbounded<string>();
    var b = Channel.CreateUnbounded<string>();
    async Task<string> SelectWithReadAsync()
    {
        var first = await Task.WhenAny(a.Reader.ReadAsync().AsTask(), b.Reader.ReadAsync().AsTask());
        return await first; // the other ReadAsync is still pending, and nobody will look at it
    }
    a.Writer.TryWrite("a1");
    Console.WriteLine($"select 1: {await SelectWithReadAsync()}");
    b.Writer.TryWrite("b1"); // taken at once by select 1's forgotten ReadAsync on b
    a.Writer.TryWrite("a2");
    Console.WriteLine($"select 2: {await SelectWithReadAsync()}");
    Console.WriteLine($"b still holds b1: {b.Reader.Count == 1}");

    // The fix: wait without taking (WaitToReadAsync), then take with TryRead.
    var c = Channel.CreateUnbounded<string>();
    var d = Channel.CreateUnbounded<string>();
    c.Writer.TryWrite("c1");
    await Task.WhenAny(c.Reader.WaitToReadAsync().AsTask(), d.Reader.WaitToReadAsync().AsTask());
    c.Reader.TryRead(out var got);
    d.Writer.TryWrite("d1");
    Console.WriteLine($"fixed: got {got}; d still holds d1: {d.Reader.Count == 1}");
}

static async Task InlineContinuation()
{
    foreach (var options in new[] { TaskCreationOptions.None, TaskCreationOptions.RunContinuationsAsynchronously })
    {
        var reply = new TaskCompletionSource<string>(options);
        Thread? owner = null;
        var handler = HandlerAsync(); // a request handler, waiting for its pick
        owner = new Thread(() => reply.SetResult("backend a")); // the state task answers
        owner.Start();
        owner.Join();
        await handler;

        async Task HandlerAsync()
        {
            var backend = await reply.Task; // everything below is the continuation
            Console.WriteLine($"{options}: the handler got {backend} on the owner's thread: {Thread.CurrentThread == owner}");
        }
    }
}

static Task DropWriteReturnsTrue()
{
    var ticks = Channel.CreateBounded<int>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    Console.WriteLine($"TryWrite(1): {ticks.Writer.TryWrite(1)}");
    Console.WriteLine($"TryWrite(2): {ticks.Writer.TryWrite(2)}"); // the slot is full: 2 is dropped
    ticks.Reader.TryRead(out var kept);
    Console.WriteLine($"the reader gets {kept}; nothing more: {!ticks.Reader.TryRead(out _)}");
    return Task.CompletedTask;
}

static Task FullModes()
{
    Console.WriteLine("capacity 2, TryWrite 1, 2, 3:");
    foreach (var mode in new[] { BoundedChannelFullMode.Wait, BoundedChannelFullMode.DropWrite,
        BoundedChannelFullMode.DropOldest, BoundedChannelFullMode.DropNewest })
    {
        var dropped = new List<int>();
        var channel = Channel.CreateBounded<int>(new BoundedChannelOptions(2) { FullMode = mode }, dropped.Add);
        var results = string.Join(" ", new[] { 1, 2, 3 }.Select(channel.Writer.TryWrite));
        var left = new List<int>();
        while (channel.Reader.TryRead(out var item)) left.Add(item);
        Console.WriteLine($"{mode,-10}  {results,-15}  left [{string.Join(",", left)}]  dropped [{string.Join(",", dropped)}]");
    }
    return Task.CompletedTask;
}

static async Task SecondWait()
{
    var unbounded = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
    var first = unbounded.Reader.WaitToReadAsync().AsTask();
    var second = unbounded.Reader.WaitToReadAsync().AsTask(); // breaks the SingleReader promise
    try
    {
        await first;
    }
    catch (OperationCanceledException)
    {
        Console.WriteLine("unbounded: the second wait cancelled the first");
    }
    unbounded.Writer.TryWrite(1);
    Console.WriteLine($"unbounded: the second wait completes: {await second}");

    var bounded = Channel.CreateBounded<int>(new BoundedChannelOptions(8) { SingleReader = true });
    var waits = new List<Task<bool>>();
    for (var turn = 0; turn < 3; turn++) waits.Add(bounded.Reader.WaitToReadAsync().AsTask()); // a fresh wait each turn
    Console.WriteLine($"bounded: {waits.Count(w => !w.IsCompleted)} waits pending on a quiet channel");
    bounded.Writer.TryWrite(1);
    var all = await Task.WhenAll(waits);
    Console.WriteLine($"bounded: one item completes all {all.Length}: {all.All(x => x)}");
}

static async Task ReadAfterClose()
{
    var channel = Channel.CreateBounded<int>(1);
    channel.Writer.TryWrite(7);
    channel.Writer.TryComplete(); // close(ch)
    Console.WriteLine($"ReadAsync: {await channel.Reader.ReadAsync()}"); // written before the close: still read
    try
    {
        await channel.Reader.ReadAsync(); // Go: v := <-ch gives 0
    }
    catch (ChannelClosedException)
    {
        Console.WriteLine("ReadAsync: ChannelClosedException");
    }
    var ok = await channel.Reader.WaitToReadAsync(); // Go: v, ok := <-ch
    Console.WriteLine($"WaitToReadAsync: {ok}; TryRead: {channel.Reader.TryRead(out var v)}, {v}");
}

static async Task WriteAfterClose()
{
    var channel = Channel.CreateBounded<int>(1);
    channel.Writer.TryComplete();
    Console.WriteLine($"TryWrite: {channel.Writer.TryWrite(1)}"); // Go: ch <- 1 panics
    try
    {
        await channel.Writer.WriteAsync(1);
    }
    catch (ChannelClosedException)
    {
        Console.WriteLine("WriteAsync: ChannelClosedException");
    }
    Console.WriteLine($"TryComplete again: {channel.Writer.TryComplete()}"); // Go: close(ch) twice panics
}
