using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using LoadBalancer.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoadBalancer.Pipeline;

// Stage 7, the state journal: a consumer at the end of a bounded channel with a task of its own,
// as the access log is. Reads the batches of records the state task made (Journal.cs: TryWrite
// only), writes each record as one JSON line (JournalLines) into its own buffer, writes the buffer
// to journal.path when it passes 64 KiB and whenever the channel is empty, and hands each emptied
// batch back (journalfree). At startup an existing file is moved to PATH.1 (the previous run).
// Rotation: at 90% of journal.maxSizeMB it asks the state task for a checkpoint (CheckpointWanted
// on events); the checkpoint record, when it comes through the channel in its place, ends the
// file, which becomes PATH.1 (replacing the older one), and begins the new PATH, so each file
// replays alone. The state task completes the channel when its loop ends; the writer then writes
// what is queued and closes the file.   Go: for batch := range journal { w.Write(lines(batch)); free <- batch }
public sealed class JournalWriter(ChannelReader<JournalBatch> batches, JournalConfig config, ILogger<JournalWriter> log,
    ChannelWriter<StateEvent>? stateTask = null, ChannelWriter<JournalBatch>? free = null, Task? stateTaskInboxDone = null) : BackgroundService
{
    const int WriteAt = 64 * 1024;

    JournalConfig _config = config; // journal.*: a reload's checkpoint or its last record changes it (the loop's only)

    /// <summary>Whether a journal file is being written (journal.path set), for the dashboard.</summary>
    public bool On => Volatile.Read(ref _config).On;

    readonly ArrayBufferWriter<byte> _buffer = new(WriteAt * 2);
    FileStream? _file;
    string? _problem;

    // Opened before Kestrel starts, so a journal that cannot be opened is said at startup.
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        OpenConfigured();
        return base.StartAsync(cancellationToken);
    }

    // The file journal.path names, as at startup: an existing one there becomes PATH.1.
    void OpenConfigured()
    {
        if (_config.Path is not { } path) return;
        Open(path, rotate: true);
        if (_file is not null) Log.JournalOpened(log, path, _config.MaxBytes >> 20);
    }

    // Without the stopping token: records still come while Kestrel drains. The state task's
    // completion of the channel ends the loop.
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(RunAsync, CancellationToken.None);

    async Task RunAsync()
    {
        using var json = new Utf8JsonWriter(_buffer, JournalLines.JsonOptions);
        try
        {
            while (await batches.WaitToReadAsync().ConfigureAwait(false))
            {
                while (batches.TryRead(out var batch))
                {
                    foreach (ref readonly var record in batch.Records)
                    {
                        if (record.Entry is JournalEntry.Checkpoint checkpoint)
                        {
                            if (checkpoint.Config.Journal != _config) SwitchTo(checkpoint.Config.Journal); // a reload turned it on or changed it
                            else StartFileWithCheckpoint();
                        }
                        else if (record.Entry is JournalEntry.Gap) _checkpointAsked = false; // it may be in the gap: ask again
                        JournalLines.Write(_buffer, json, record);
                        if (record.Entry is JournalEntry.Reloaded { Config.Journal.On: false } && _config.On) SwitchTo(JournalConfig.Off); // its last record
                    }
                    Volatile.Write(ref _recordsRead, _recordsRead + batch.Count);
                    if (_buffer.WrittenCount >= WriteAt || !batches.TryPeek(out _)) WriteOut(); // full, or nothing more waits
                    batch.Clear();
                    free?.TryWrite(batch); // back to the state task (written out, checkpoint asked if due); when the free list is full, to the GC
                }
            }
        }
        finally
        {
            WriteOut();
            _file?.Dispose();
            _file = null;
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // The state task (registered after this stage, so stopped before it) has completed the
        // channel; wait for the queued records to be written.
        if (ExecuteTask is { } running)
        {
            try
            {
                await running.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
        }
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    void WriteOut()
    {
        var bytes = _buffer.WrittenSpan;
        if (bytes.Length > 0 && _config.Path is { } path)
        {
            try
            {
                if (_file is not null && stateTask is not null && !_checkpointAsked && _file.Position + bytes.Length > _config.MaxBytes / 10 * 9)
                    _checkpointAsked = stateTask.TryWrite(CheckpointWanted.Instance); // events full: asked again at the next write
                // The checkpoint comes behind the batches queued before it (the state task answers
                // an ask it took even while it stops): the file may pass its size while it comes,
                // by half at most, asking again as it goes; past that the new file begins without
                // one (a replay of it reads PATH.1 first). Once the state task has taken its last
                // event (stateTaskInboxDone) none can come: what is left, at most the channel's
                // content, goes into this file rather than a new one that no replay could start.
                var limit = stateTask is null ? _config.MaxBytes
                    : stateTaskInboxDone?.IsCompleted == true ? long.MaxValue
                    : _config.MaxBytes + _config.MaxBytes / 2;
                if (_file is not null && _file.Position + bytes.Length > limit && _file.Position > 0)
                {
                    _file.Dispose();
                    _file = null;
                    Open(path, rotate: true);
                    Log.JournalRotated(log, path);
                }
                _file?.Write(bytes);
                _problem = null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                if (e.Message != _problem) Log.JournalWriteFailed(log, path, e.Message);
                _problem = e.Message;
            }
        }
        _buffer.ResetWrittenCount();
    }

    // The checkpoint the state task made on our asking (at 90% of journal.maxSizeMB): what is
    // before it goes to the file, which becomes PATH.1; the checkpoint begins the new PATH, so each
    // file replays alone, and no record is in both or in neither.
    void StartFileWithCheckpoint()
    {
        _checkpointAsked = false;
        WriteOut();
        if (_file is null || _file.Position == 0 || _config.Path is not { } path) return;
        _file.Dispose();
        _file = null;
        Open(path, rotate: true);
        Log.JournalRotated(log, path);
    }

    // A reload changed journal.*: what is written so far goes to the old file, which is closed; a
    // new path opens as at startup (an existing file there becomes PATH.1), its first record the
    // checkpoint the state task made with the new settings. Off: nothing more is written.
    void SwitchTo(JournalConfig next)
    {
        WriteOut();
        _file?.Dispose();
        _file = null;
        _checkpointAsked = false;
        Volatile.Write(ref _config, next);
        OpenConfigured();
    }

    bool _checkpointAsked;

    // A record is never split across files: a rotation happens between writes, and each write ends on a line.
    void Open(string path, bool rotate)
    {
        try
        {
            if (rotate && File.Exists(path)) File.Move(path, path + ".1", overwrite: true);
            _file = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Create,
                Access = FileAccess.Write,
                Share = FileShare.Read | FileShare.Delete,
                BufferSize = 0, // the buffer is ours
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.JournalCannotOpen(log, path, e.Message);
            _file = null;
        }
    }

    long _recordsRead; // written by the writer loop only; read by the dashboard (PipelineView)

    /// <summary>Records taken from the journal channel since startup.</summary>
    public long RecordsRead => Volatile.Read(ref _recordsRead);
}
