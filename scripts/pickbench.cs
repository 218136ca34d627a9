#!/usr/bin/env -S dotnet run -c Release
#:project ../LoadBalancer/LoadBalancer.csproj
#:property TieredPGO=true
// Micro-benchmark of the state task's pick round trip: a handler asks BackendState for a backend
// (PickRequest through the requests channel, reply back) and tells it the outcome (through the
// events channel), as every proxied request does. Many concurrent "handlers" load the state task.
// Compared with the same pick done directly under a lock, and with a lock-free Interlocked pick.
//
//   dotnet run -c Release scripts/pickbench.cs                  # all cores
//   taskset -c 1 dotnet run -c Release scripts/pickbench.cs     # one core, like the balancer in compare.sh
//
// Prints per mode and concurrency: picks/s, round-trip latency p50/p99/p99.9 (us), bytes allocated per pick.
using System.Diagnostics;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

var seconds = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 3;
var config = ConfigLoader.Parse("""{ "backends": [ {"url":"http://127.0.0.1:1"}, {"url":"http://127.0.0.1:2"}, {"url":"http://127.0.0.1:3"} ] }"""u8.ToArray(), "bench.json");
var nextId = 0;
BackendTable NewTable() => new(config, b => new BackendRoute(++nextId, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())), TimeProvider.System, _ => { });

Console.WriteLine($"cores seen: {Environment.ProcessorCount}, GC server: {System.Runtime.GCSettings.IsServerGC}, {seconds}s per row");
Console.WriteLine($"{"mode",-22} {"askers",6} {"picks/s",12} {"p50 us",8} {"p99 us",8} {"p99.9 us",9} {"B/pick",7}");

foreach (var askers in new[] { 1, 8, 64 })
{
    // 1. The design: ask the state task over the channels.
    var channels = new PipelineChannels();
    var state = new BackendState(channels, NewTable(), TimeProvider.System, NullLogger<BackendState>.Instance);
    await state.StartAsync(CancellationToken.None);
    var client = new StateClient(channels);
    await RunAsync("channel round trip", askers, async () =>
    {
        var pick = await client.PickAsync();
        await client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
    });
    await state.StopAsync(CancellationToken.None);

    // 2. The same table and rules, shared under a lock (what the single owner replaces).
    var table = NewTable();
    var gate = new Lock();
    await RunAsync("same rules under lock", askers, () =>
    {
        Pick pick;
        lock (gate) pick = table.Choose(null);
        lock (gate) table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200));
        return Task.CompletedTask;
    });

    // 3. Lock-free: plain round-robin with Interlocked, in-flight counted with Interlocked
    //    (no health, no weights, no ejection: a lower bound, not an equivalent).
    var routes = table.Entries.Select(e => e.Route).ToArray();
    var inFlight = new int[routes.Length];
    var cursor = -1;
    await RunAsync("lock-free round-robin", askers, () =>
    {
        var i = (int)((uint)Interlocked.Increment(ref cursor) % (uint)routes.Length);
        Interlocked.Increment(ref inFlight[i]);
        Interlocked.Decrement(ref inFlight[i]);
        return Task.CompletedTask;
    });
}

async Task RunAsync(string mode, int askers, Func<Task> op)
{
    // Warm up (tiered JIT, PGO), then measure.
    await Drive(askers, op, TimeSpan.FromSeconds(Math.Min(2, seconds)), null);
    var samples = new List<long>[askers];
    var allocated = GC.GetTotalAllocatedBytes(precise: true);
    var started = Stopwatch.GetTimestamp();
    var count = await Drive(askers, op, TimeSpan.FromSeconds(seconds), samples);
    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
    var bytes = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)count;
    var all = samples.SelectMany(s => s).ToArray();
    Array.Sort(all);
    double Us(double q) => all[(int)Math.Min(all.Length - 1, q * all.Length)] * 1e6 / Stopwatch.Frequency;
    Console.WriteLine($"{mode,-22} {askers,6} {count / elapsed,12:N0} {Us(0.50),8:0.00} {Us(0.99),8:0.00} {Us(0.999),9:0.00} {bytes,7:0}");
}

static async Task<long> Drive(int askers, Func<Task> op, TimeSpan duration, List<long>[]? samples)
{
    var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    var tasks = new Task<long>[askers];
    for (var a = 0; a < askers; a++)
    {
        var list = samples is null ? null : samples[a] = new List<long>(1 << 20);
        tasks[a] = Task.Run(async () =>
        {
            long n = 0;
            while (true)
            {
                var t0 = Stopwatch.GetTimestamp();
                if (t0 >= stopAt) return n;
                await op();
                var t1 = Stopwatch.GetTimestamp();
                if ((n & 7) == 0) list?.Add(t1 - t0); // every 8th: keeps the sample list's own cost small
                n++;
            }
        });
    }
    long total = 0;
    foreach (var t in tasks) total += await t;
    return total;
}
