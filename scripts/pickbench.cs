#!/usr/bin/env -S dotnet run -c Release
#:project ../LoadBalancer/LoadBalancer.csproj
#:property TieredPGO=true
// Micro-benchmark of the state task's pick round trip: a handler asks BackendState for a backend
// (PickRequest through the requests channel, reply back), goes away to forward (here: one
// Task.Yield, so the handler gives up its thread as a real forward does), then tells BackendState
// the outcome (through the events channel). Many concurrent "handlers" load the state task.
// Compared with the same pick done directly under a lock, and with a lock-free Interlocked pick.
// "consistent-hash" is the channel round trip again with balancing consistent-hash (bounded load
// 1.25): each ask carries a hash key, one of 1,000, as a request with hashKey would.
//
// The last two lines are the queue mode (issue 12): the limit binding, 64 askers, 40 of them waiting.
//
// First, the direct table (issue 16): the state task's own work per pick + outcome, calling
// BackendTable as the loop does (no channel), for each policy with 3 and with 3,000 backends,
// 16 picks outstanding (each new pick releases the oldest). "+ gauges" adds one PublishGauges per
// pick + outcome (a loop turn per message, the worst case), with metrics on.
//
//   dotnet run -c Release scripts/pickbench.cs                  # all cores
//   taskset -c 1 dotnet run -c Release scripts/pickbench.cs     # one core, like the balancer in compare.sh
//   taskset -c 1 dotnet run -c Release scripts/pickbench.cs -- direct   # the direct table only
//
// Prints per mode and concurrency:
//   rt/s            round trips per second;
//   CPU us/rt       what one round trip costs in CPU: the process's CPU time (all threads, GC
//                   included) over the round trips done, in 20 ms windows; p50 and p99 of the
//                   windows. An upper bound: the harness's own work (Task.Yield, the lambdas, the
//                   timestamps) is in it, the same for every mode;
//   wait us         the handler's time in the round trip (ask until the answer is back, plus the
//                   release call; not the simulated forward), p50/p99/p99.9: with many askers on
//                   few cores this is mostly queueing behind the other askers, not work;
//   B/rt            bytes allocated per round trip (the benchmark's own Task.Yield included).
using System.Diagnostics;
using System.Text;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using Microsoft.Extensions.Logging.Abstractions;

var directOnly = args.Contains("direct");
var seconds = args.FirstOrDefault(a => a != "direct") is { } s ? double.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : 3;
var config = ConfigLoader.Parse("""{ "backends": [ {"url":"http://127.0.0.1:1"}, {"url":"http://127.0.0.1:2"}, {"url":"http://127.0.0.1:3"} ] }"""u8.ToArray(), "bench.json");
var nextId = 0;
BackendTable NewTable(LbConfig? c = null) => new(c ?? config, b => new BackendRoute(++nextId, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())), TimeProvider.System, _ => { });
var hashed = config with { Balancing = BalancingNames.ConsistentHash };
var keys = Enumerable.Range(0, 1000).Select(i => LoadBalancer.Balancing.KeyHash.Of($"user-{i}")).ToArray();

Console.WriteLine($"cores seen: {Environment.ProcessorCount}, GC server: {System.Runtime.GCSettings.IsServerGC}, {seconds}s per row");

// Direct: BackendTable.Choose + Apply on one thread, per policy and backend count (after a
// throwaway pass, so that the first row is not the one that pays for the JIT).
foreach (var policy in BalancingNames.All)
{
    using var warm = new LoadBalancer.Admin.LbMetrics($"pickbench-warm-{policy}");
    Direct(NewDirectTable(config with { Balancing = policy }, null), policy, TimeSpan.FromSeconds(0.3), publish: false);
    Direct(NewDirectTable(config with { Balancing = policy }, warm), policy, TimeSpan.FromSeconds(0.3), publish: true);
}
Console.WriteLine($"{"direct: us per pick + outcome",-32} {"backends",8} {"us",8} {"+ gauges",9} {"B/pick",7}");
foreach (var policy in new[] { BalancingNames.RoundRobin, BalancingNames.LeastConnections, BalancingNames.PowerOfTwo, BalancingNames.Random, BalancingNames.ConsistentHash })
    foreach (var count in new[] { 3, 3000 })
    {
        var urls = string.Join(", ", Enumerable.Range(1, count).Select(i => $"{{\"url\":\"http://127.0.0.1:{10000 + i}\"}}"));
        var many = ConfigLoader.Parse(Encoding.UTF8.GetBytes($"{{ \"balancing\": \"{policy}\", \"backends\": [ {urls} ] }}"), "bench.json");
        var plain = Direct(NewDirectTable(many, null), policy, TimeSpan.FromSeconds(Math.Min(1, seconds)), publish: false); // warm up
        plain = Direct(NewDirectTable(many, null), policy, TimeSpan.FromSeconds(seconds), publish: false);
        using var metrics = new LoadBalancer.Admin.LbMetrics($"pickbench-{policy}-{count}");
        var gauged = Direct(NewDirectTable(many, metrics), policy, TimeSpan.FromSeconds(seconds), publish: true);
        Console.WriteLine($"{policy,-32} {count,8} {plain.Us,8:0.000} {gauged.Us,9:0.000} {plain.Bytes,7:0}");
    }
if (directOnly) return;
Console.WriteLine();
Console.WriteLine($"{"",-22} {"",6} {"",12} {"CPU us/rt",-15} {"wait us",-26}");
Console.WriteLine($"{"mode",-22} {"askers",6} {"rt/s",12} {"p50",7} {"p99",7} {"p50",8} {"p99",8} {"p99.9",8} {"B/rt",7}");

foreach (var askers in new[] { 1, 8, 64 })
{
    // 1. The design: ask the state task over the channels.
    var channels = new PipelineChannels();
    var state = new BackendState(channels, NewTable(), TimeProvider.System, NullLogger<BackendState>.Instance);
    await state.StartAsync(CancellationToken.None);
    var client = new StateClient(channels);
    await RunAsync("channel round trip", askers,
        () => client.PickAsync(),
        pick => client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200)));
    await state.StopAsync(CancellationToken.None);

    // 1b. The same with consistent-hash and a key per ask.
    var hashChannels = new PipelineChannels();
    var hashState = new BackendState(hashChannels, NewTable(hashed), TimeProvider.System, NullLogger<BackendState>.Instance);
    await hashState.StartAsync(CancellationToken.None);
    var hashClient = new StateClient(hashChannels);
    var nextKey = 0;
    await RunAsync("consistent-hash", askers,
        () => hashClient.PickAsync(null, default, new RequestKey(keys[(uint)Interlocked.Increment(ref nextKey) % (uint)keys.Length], null)),
        pick => hashClient.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200)));
    await hashState.StopAsync(CancellationToken.None);

    // 1c. The same with the state journal on (journal.path): the state task also TryWrites a
    //     record per pick and per outcome, and the JournalWriter stage writes them to a file.
    var journalChannels = new PipelineChannels();
    var clock = new StateClock(TimeProvider.System);
    var journal = new Journal(journalChannels.Journal.Writer, clock, journalChannels.JournalFree.Reader);
    var journalFile = Path.Combine(Path.GetTempPath(), $"pickbench-{Environment.ProcessId}.journal");
    var journalConfig = config with { Journal = new JournalConfig(journalFile, 1L << 32) }; // the writer's settings are the table's, as in Program
    var writer = new JournalWriter(journalChannels.Journal.Reader, journalConfig.Journal, NullLogger<JournalWriter>.Instance,
        journalChannels.Events.Writer, journalChannels.JournalFree.Writer, journalChannels.Events.Reader.Completion);
    var journaled = new BackendState(journalChannels,
        new BackendTable(journalConfig, b => new BackendRoute(++nextId, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())), clock, _ => { }, random: new Random(1)),
        TimeProvider.System, NullLogger<BackendState>.Instance, clock, journal);
    journal.Start(1, journalConfig);
    await writer.StartAsync(CancellationToken.None);
    await journaled.StartAsync(CancellationToken.None);
    var journalClient = new StateClient(journalChannels);
    await RunAsync("round trip, journal on", askers,
        () => journalClient.PickAsync(),
        pick => journalClient.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200)));
    await journaled.StopAsync(CancellationToken.None);
    await writer.StopAsync(CancellationToken.None);
    Console.WriteLine($"{"",-22} journal: {new FileInfo(journalFile).Length / 1e6:0.0} MB written, {journal.Dropped} records dropped");
    File.Delete(journalFile);
    File.Delete(journalFile + ".1");

    // 2. The same table and rules, shared under a lock (what the single owner replaces).
    var table = NewTable();
    var gate = new Lock();
    await RunAsync("same rules under lock", askers,
        () => { lock (gate) return ValueTask.FromResult(table.Choose(null)); },
        pick => { lock (gate) table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200)); return ValueTask.CompletedTask; });

    // 3. Lock-free: plain round-robin with Interlocked, in-flight counted with Interlocked
    //    (no health, no weights, no ejection: a lower bound, not an equivalent).
    var routes = table.Entries.Select(e => e.Route).ToArray();
    var inFlight = new int[routes.Length];
    var cursor = -1;
    await RunAsync("lock-free round-robin", askers,
        () =>
        {
            var i = (int)((uint)Interlocked.Increment(ref cursor) % (uint)routes.Length);
            Interlocked.Increment(ref inFlight[i]);
            return ValueTask.FromResult(new Pick(routes[i], default!));
        },
        pick => { Interlocked.Decrement(ref inFlight[Array.IndexOf(routes, pick.Backend)]); return ValueTask.CompletedTask; });
}

// Queue mode (issue 12): limits.maxInFlightPerBackend 8 on the three backends (24 slots) and 64
// askers, so 40 always wait in the state task's queue and every outcome hands its slot to the
// oldest waiter. First over the channels as above (CPU per round trip, process-wide), then the
// state task's own work alone: one thread calls BackendTable as the loop would (an outcome that
// frees a slot and grants it to the oldest waiter, a new pick that joins the queue), so the time
// per pick is the state task's CPU per pick with the limit binding, channels left out.
var limited = ConfigLoader.Parse("""{ "backends": [ {"url":"http://127.0.0.1:1"}, {"url":"http://127.0.0.1:2"}, {"url":"http://127.0.0.1:3"} ], "limits": { "maxInFlightPerBackend": 8 } }"""u8.ToArray(), "bench.json");
BackendTable NewLimitedTable() => new(limited, b => new BackendRoute(++nextId, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())), TimeProvider.System, _ => { });
{
    var channels = new PipelineChannels();
    var state = new BackendState(channels, NewLimitedTable(), TimeProvider.System, NullLogger<BackendState>.Instance);
    await state.StartAsync(CancellationToken.None);
    var client = new StateClient(channels);
    await RunAsync("queue: channel rt", 64,
        () => client.PickAsync(),
        pick => client.TellAsync(new RequestOutcome(pick.Backend!, Outcome.Response, 200)));
    await state.StopAsync(CancellationToken.None);

    QueueTableOnly(NewLimitedTable(), 64, TimeSpan.FromSeconds(Math.Min(2, seconds))); // warm up
    var (perPick, bytes, waiting) = QueueTableOnly(NewLimitedTable(), 64, TimeSpan.FromSeconds(seconds));
    Console.WriteLine($"queue: state task only, 64 askers, limit 8 x 3: {perPick * 1000:0} ns CPU per pick (an outcome handing its slot to the oldest waiter + a new pick queued), {bytes:0} B/pick, {waiting} waiting");
}

BackendTable NewDirectTable(LbConfig c, LoadBalancer.Admin.LbMetrics? metrics) =>
    new(c, b => new BackendRoute(++nextId, b.Url, b.Key, new HttpMessageInvoker(new SocketsHttpHandler())), TimeProvider.System, _ => { }, metrics, new Random(1));

// One thread calls the table as the state loop would: a pick (with a hash key for
// consistent-hash), and the outcome of the pick made 16 picks before (16 in flight).
(double Us, double Bytes) Direct(BackendTable table, string policy, TimeSpan duration, bool publish)
{
    const int Outstanding = 16;
    var held = new Queue<BackendRoute>(Outstanding);
    var hashed = policy == BalancingNames.ConsistentHash;
    long n = 0;
    var allocated = GC.GetAllocatedBytesForCurrentThread();
    var cpu0 = Environment.CpuUsage.TotalTime;
    var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    while ((n & 1023) != 0 || Stopwatch.GetTimestamp() < stopAt)
    {
        var pick = table.Choose(null, hashed ? new RequestKey(keys[n % keys.Length], null) : default);
        held.Enqueue(pick.Backend!);
        if (held.Count > Outstanding) table.Apply(new RequestOutcome(held.Dequeue(), Outcome.Response, 200));
        if (publish) table.PublishGauges();
        n++;
    }
    var cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalMicroseconds;
    return (cpu / n, (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)n);
}

static (double UsPerPick, double BytesPerPick, int Waiting) QueueTableOnly(BackendTable table, int askers, TimeSpan duration)
{
    var asks = new Queue<ValueTask<Pick>>(askers); // oldest first: FIFO grants answer them in this order
    void Ask()
    {
        var reply = Reply<Pick>.Rent();
        var answer = reply.Task;
        table.Pick(new PickRequest(null, reply));
        asks.Enqueue(answer);
    }
    for (var i = 0; i < askers; i++) Ask();
    var waiting = table.QueueLength;
    long n = 0;
    var allocated = GC.GetAllocatedBytesForCurrentThread();
    var cpu0 = Environment.CpuUsage.TotalTime;
    var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    while ((n & 1023) != 0 || Stopwatch.GetTimestamp() < stopAt)
    {
        var answer = asks.Dequeue();
        if (!answer.IsCompleted) throw new InvalidOperationException("the oldest ask is not answered: not FIFO");
        var pick = answer.Result;
        table.Apply(new RequestOutcome(pick.Backend!, Outcome.Response, 200)); // the oldest waiter takes the slot
        Ask();                                                                   // and a new one queues
        n++;
    }
    var cpu = (Environment.CpuUsage.TotalTime - cpu0).TotalMicroseconds;
    var bytes = (GC.GetAllocatedBytesForCurrentThread() - allocated) / (double)n;
    return (cpu / n, bytes, waiting);
}

async Task RunAsync(string mode, int askers, Func<ValueTask<Pick>> ask, Func<Pick, ValueTask> release)
{
    // Warm up (tiered JIT, PGO), then measure.
    await Drive(askers, ask, release, TimeSpan.FromSeconds(Math.Min(2, seconds)), null, null);
    var samples = new List<long>[askers];
    var windows = new List<double>();
    var allocated = GC.GetTotalAllocatedBytes(precise: true);
    var started = Stopwatch.GetTimestamp();
    var count = await Drive(askers, ask, release, TimeSpan.FromSeconds(seconds), samples, windows);
    var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
    var bytes = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / (double)count;
    var all = samples.SelectMany(s => s).ToArray();
    Array.Sort(all);
    windows.Sort();
    double Us(double q) => all[(int)Math.Min(all.Length - 1, q * all.Length)] * 1e6 / Stopwatch.Frequency;
    double Cpu(double q) => windows.Count == 0 ? double.NaN : windows[(int)Math.Min(windows.Count - 1, q * windows.Count)]; // NaN: no 20 ms window had a round trip (a starved row)
    Console.WriteLine($"{mode,-22} {askers,6} {count / elapsed,12:N0} {Cpu(0.50),7:0.00} {Cpu(0.99),7:0.00} {Us(0.50),8:0.00} {Us(0.99),8:0.00} {Us(0.999),8:0.00} {bytes,7:0}");
}

static async Task<long> Drive(int askers, Func<ValueTask<Pick>> ask, Func<Pick, ValueTask> release, TimeSpan duration,
    List<long>[]? samples, List<double>? windows)
{
    var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
    const int Pad = 16; // one cache line per asker's counter: no false sharing
    var done = new long[askers * Pad];
    var tasks = new Task<long>[askers];
    for (var a = 0; a < askers; a++)
    {
        var list = samples is null ? null : samples[a] = new List<long>(1 << 20);
        var slot = a * Pad;
        tasks[a] = Task.Run(async () =>
        {
            long n = 0;
            while (true)
            {
                var t0 = Stopwatch.GetTimestamp();
                if (t0 >= stopAt) return n;
                var pick = await ask();
                var t1 = Stopwatch.GetTimestamp();
                await Task.Yield(); // the forward: the handler gives its thread back while it waits
                var t2 = Stopwatch.GetTimestamp();
                await release(pick);
                var t3 = Stopwatch.GetTimestamp();
                if ((n & 7) == 0) list?.Add(t1 - t0 + t3 - t2); // every 8th: keeps the sample list's own cost small
                n++;
                Volatile.Write(ref done[slot], n);
            }
        });
    }
    // CPU per round trip in 20 ms windows, read by a plain thread that sleeps between reads.
    var sampler = windows is null ? null : new Thread(() =>
    {
        long Done() { long sum = 0; for (var i = 0; i < done.Length; i += Pad) sum += Volatile.Read(ref done[i]); return sum; }
        var (cpu0, n0) = (Environment.CpuUsage.TotalTime, Done());
        while (Stopwatch.GetTimestamp() < stopAt)
        {
            Thread.Sleep(20);
            var (cpu1, n1) = (Environment.CpuUsage.TotalTime, Done());
            if (n1 > n0) windows.Add((cpu1 - cpu0).TotalMicroseconds / (n1 - n0));
            (cpu0, n0) = (cpu1, n1);
        }
    }) { IsBackground = true };
    sampler?.Start();
    long total = 0;
    foreach (var t in tasks) total += await t;
    sampler?.Join();
    return total;
}
