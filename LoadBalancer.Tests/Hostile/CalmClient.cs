using System.Collections.Concurrent;
using System.Net;

namespace LoadBalancer.Tests.Hostile;

// The well-behaved client: a few loops of plain GETs (each at most one per 5 ms) on its own kept-alive connections, for as
// long as a hostile action lasts. Anything but a 200 "backend-..." answer is an error, recorded
// with when it happened. Tests wait on its progress (WaitForAsync), never on the clock.
public sealed class CalmClient : IAsyncDisposable
{
    public const string PathPrefix = "/calm/";
    const int MaxErrorsKept = 20;

    readonly HttpClient _client;
    readonly CancellationTokenSource _stop = new();
    readonly ConcurrentQueue<string> _errors = new();
    readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
    readonly Lock _gate = new();
    readonly DateTime _started = DateTime.UtcNow;
    Task[] _loops = [];
    int _done, _failed;

    CalmClient(Uri server, Version version) =>
        _client = new HttpClient(new SocketsHttpHandler { PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = server,
            Timeout = TimeSpan.FromSeconds(10),
            DefaultRequestVersion = version, // 2.0: h2c with prior knowledge on an http:// listener
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

    /// <summary>Requests finished so far (answered or failed).</summary>
    public int Done => Volatile.Read(ref _done);
    public int Failed => Volatile.Read(ref _failed);
    public IReadOnlyCollection<string> Errors => _errors;

    public static CalmClient Start(Uri server, int loops = 2, Version? version = null)
    {
        var calm = new CalmClient(server, version ?? HttpVersion.Version11);
        calm._loops = Enumerable.Range(0, loops).Select(i => Task.Run(() => calm.LoopAsync(i))).ToArray();
        return calm;
    }

    async Task LoopAsync(int loop)
    {
        // Paced, so the machine's two cores stay for the balancer and the hostile client: a
        // request every 5 ms per loop is still hundreds during any hostile action.
        using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
        for (var n = 0; !_stop.IsCancellationRequested; n++)
        {
            string? error = null;
            try
            {
                using var response = await _client.GetAsync($"{PathPrefix}{loop}/{n}", _stop.Token);
                var body = await response.Content.ReadAsStringAsync(_stop.Token);
                if (response.StatusCode != HttpStatusCode.OK || !body.StartsWith("backend-", StringComparison.Ordinal))
                    error = $"{(int)response.StatusCode} \"{body.Trim()}\"";
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                error = $"{e.GetType().Name}: {e.Message}";
            }
            if (error is not null)
            {
                Interlocked.Increment(ref _failed);
                if (_errors.Count < MaxErrorsKept)
                    _errors.Enqueue($"+{(DateTime.UtcNow - _started).TotalMilliseconds:0} ms GET {PathPrefix}{loop}/{n}: {error}");
            }
            Finished();
            try
            {
                await pace.WaitForNextTickAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    void Finished()
    {
        var done = Interlocked.Increment(ref _done);
        lock (_gate)
            for (var i = _waiters.Count - 1; i >= 0; i--)
                if (done >= _waiters[i].Count)
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
    }

    /// <summary>Completes once <paramref name="more"/> further requests have finished.</summary>
    public Task WaitForAsync(int more)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var target = Done + more;
            _waiters.Add((target, done));
        }
        return done.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task StopAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(15));
    }

    public string Describe() =>
        $"{Failed} of {Done} well-behaved requests failed" + (Failed == 0 ? "" : ":\n  " + string.Join("\n  ", _errors));

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested) await StopAsync();
        _client.Dispose();
        _stop.Dispose();
    }
}
