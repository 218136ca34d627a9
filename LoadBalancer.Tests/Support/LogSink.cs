using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Tests.Support;

// Captures log lines so a test can wait for one ("Backend ... is now unhealthy") instead of sleeping.
public sealed class LogSink : ILoggerProvider
{
    readonly ConcurrentQueue<LogLine> _lines = new();
    readonly List<(Func<LogLine, bool> Match, TaskCompletionSource<LogLine> Done)> _waiters = [];
    readonly Lock _gate = new();

    public IReadOnlyCollection<LogLine> Lines => _lines;

    /// <summary>Completes when a matching line is (or already was) logged; fails after the deadline.</summary>
    public Task<LogLine> WaitForAsync(Func<LogLine, bool> match, TimeSpan? deadline = null)
    {
        var done = new TaskCompletionSource<LogLine>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            foreach (var line in _lines)
                if (match(line)) return Task.FromResult(line);
            _waiters.Add((match, done));
        }
        return done.Task.WaitAsync(deadline ?? TimeSpan.FromSeconds(10));
    }

    public Task<LogLine> WaitForAsync(string contains, TimeSpan? deadline = null) =>
        WaitForAsync(l => l.Message.Contains(contains, StringComparison.Ordinal), deadline);

    /// <summary>Completes when at least <paramref name="count"/> matching lines have been logged
    /// (e.g. the n-th probe result of a backend).</summary>
    public Task<LogLine> WaitForCountAsync(string contains, int count, TimeSpan? deadline = null)
    {
        var seen = 0; // each line is offered to the matcher once, under the lock
        return WaitForAsync(l => l.Message.Contains(contains, StringComparison.Ordinal) && ++seen >= count, deadline);
    }

    void Add(LogLine line)
    {
        lock (_gate)
        {
            _lines.Enqueue(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
                if (_waiters[i].Match(line))
                {
                    _waiters[i].Done.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);
    public void Dispose() { }

    sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Add(new LogLine(logLevel, category, formatter(state, exception), exception));
    }
}

public sealed record LogLine(LogLevel Level, string Category, string Message, Exception? Exception);
