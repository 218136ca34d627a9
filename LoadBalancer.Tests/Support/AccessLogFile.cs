using System.Threading.Channels;

namespace LoadBalancer.Tests.Support;

// An access-log file as the writer stage fills it, off the request path: a client has its
// response before the line is written. Waits, bounded, until the file's complete lines satisfy a
// condition, woken by file-system events (inotify), never by sleeping.
public static class AccessLogFile
{
    public static async Task<string[]> WaitForLinesAsync(string path, Func<string[], bool> done, TimeSpan? deadline = null)
    {
        using var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!, Path.GetFileName(path))
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size,
        };
        var changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        watcher.Changed += (_, _) => changed.Writer.TryWrite(true);
        watcher.Created += (_, _) => changed.Writer.TryWrite(true);
        watcher.Renamed += (_, _) => changed.Writer.TryWrite(true);
        watcher.EnableRaisingEvents = true; // before the first read: no write can slip between them
        using var timeout = new CancellationTokenSource(deadline ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var lines = Read(path);
            if (done(lines)) return lines;
            try
            {
                await changed.Reader.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{path} never had the lines expected; it has:\n{string.Join("\n", lines)}");
            }
        }
    }

    public static Task<string[]> WaitForCountAsync(string path, int count, TimeSpan? deadline = null) =>
        WaitForLinesAsync(path, lines => lines.Length >= count, deadline);

    /// <summary>The file's complete lines (a line still being written is left out); none when it does not exist.</summary>
    public static string[] Read(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var text = new StreamReader(stream).ReadToEnd();
            var end = text.LastIndexOf('\n');
            return end < 0 ? [] : text[..end].Split('\n');
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return [];
        }
    }
}
