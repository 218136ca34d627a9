using System.Reflection;
using LoadBalancer.Configuration;

namespace LoadBalancer;

// The command line, and what the balancer says before it has a logger: usage, the version, a
// configuration that cannot be used, --check's verdict. Exit codes, as nginx and HAProxy users
// expect from a config test: 0 fine, 2 the configuration or the command line, 1 the environment
// (a listener that cannot bind; Main says that one).
public sealed record CommandLine(CommandLine.Action Do, string ConfigPath, bool Strict, string? Problem = null)
{
    public enum Action { Run, Check, Help, Version, Invalid, Replay }

    public const int ExitOk = 0, ExitEnvironment = 1, ExitConfiguration = 2;

    /// <summary>replay: the journal, and --until's time as given (parsed by the replay, which knows the journal's date).</summary>
    public string? ReplayPath { get; init; }
    public string? Until { get; init; }
    public bool PrintStatus { get; init; }

    public const string Usage = """
        usage: LoadBalancer [--config PATH] [--strict]            run
               LoadBalancer --check [--config PATH] [--strict]    test the configuration, like nginx -t
               LoadBalancer replay PATH [--until TIME] [--status]   replay a state journal (journal.path)
               LoadBalancer --help | --version

          -c, --config PATH  the configuration file (default: lb.json in the current directory)
          --check            load and validate it as startup does, print "<file>: ok (N backends,
                             <policy>)" or the error, and exit; binds nothing, probes nothing
          --strict           a key the balancer does not know is an error, not a warning
          -h, --help         this text
          --version          the version
          replay PATH        feed the journal to a fresh state task on a fake clock and compare every
                             answer: "N messages, M picks, 0 divergences" (exit 0), the first
                             divergence (exit 1), or a gap the writer left (exit 3)
          --until TIME       stop at TIME (ISO 8601, or HH:mm:ss UTC on the journal's first day) and
                             print /status and /events as they were then
          --status           print /status and /events at the end

        exit codes: 0 ok, 1 the environment (e.g. a port in use) or a replay divergence, 2 the
        configuration or the command line, 3 a replay that reached a gap in the journal

        """;

    public static CommandLine Parse(string[] args)
    {
        if (args is ["replay", ..]) return ParseReplay(args[1..]);
        var path = "lb.json";
        bool check = false, strict = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--help" or "-h": return new(Action.Help, path, strict);
                case "--version": return new(Action.Version, path, strict);
                case "--check": check = true; break;
                case "--strict": strict = true; break;
                case "--config" or "-c" when i + 1 < args.Length: path = args[++i]; break;
                case "--config" or "-c": return new(Action.Invalid, path, strict, $"{args[i]} needs a PATH");
                case var a when a.StartsWith("--config=", StringComparison.Ordinal): path = a["--config=".Length..]; break;
                case var a: return new(Action.Invalid, path, strict, $"unknown argument \"{a}\"");
            }
        }
        return new(check ? Action.Check : Action.Run, Path.GetFullPath(path), strict);
    }

    static CommandLine ParseReplay(string[] args)
    {
        string? journal = null, until = null;
        var status = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--help" or "-h": return new(Action.Help, "lb.json", false);
                case "--status": status = true; break;
                case "--until" when i + 1 < args.Length: until = args[++i]; break;
                case "--until": return new(Action.Invalid, "lb.json", false, "--until needs a TIME");
                case var a when a.StartsWith("--until=", StringComparison.Ordinal): until = a["--until=".Length..]; break;
                case var a when a.StartsWith('-'): return new(Action.Invalid, "lb.json", false, $"unknown argument \"{a}\"");
                case var a when journal is null: journal = a; break;
                case var a: return new(Action.Invalid, "lb.json", false, $"replay takes one PATH; \"{a}\" is a second");
            }
        }
        if (journal is null) return new(Action.Invalid, "lb.json", false, "replay needs a PATH (the journal.path file)");
        return new(Action.Replay, "lb.json", false) { ReplayPath = journal, Until = until, PrintStatus = status };
    }

    /// <summary>--help, --version and a bad command line: says it and returns the exit code.
    /// Null when there is a configuration to load.</summary>
    public int? Answer()
    {
        switch (Do)
        {
            case Action.Help:
                Console.Out.Write(Usage);
                return ExitOk;
            case Action.Version:
                Console.Out.WriteLine($"LoadBalancer {Version}");
                return ExitOk;
            case Action.Invalid:
                Console.Error.WriteLine($"error: {Problem}");
                Console.Error.Write(Usage);
                return ExitConfiguration;
            default:
                return null;
        }
    }

    /// <summary>Loads and validates the configuration, startup and --check alike. Null when it
    /// cannot be used: the one line naming the file and the problem is on stderr then.</summary>
    public LbConfig? Load(List<string> warnings)
    {
        try
        {
            var config = ConfigLoader.Load(ConfigPath, warnings, Strict);
            if (config.Tls is { } tls) Hosting.CertificatePair.Load(tls, config.ListenProtocols, ConfigPath); // a pair that cannot serve stops startup too
            return config;
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return null;
        }
    }

    /// <summary>--check's verdict on a configuration that loaded: the warnings on stderr, as
    /// startup would log them, and the one line on stdout.</summary>
    public int Report(LbConfig config, IEnumerable<string> warnings)
    {
        foreach (var warning in warnings) Console.Error.WriteLine($"warning: {warning}");
        Console.Out.WriteLine($"{ConfigPath}: ok ({config.Backends.Count} backends, {config.Balancing})");
        return ExitOk;
    }

    /// <summary>The assembly's informational version (the csproj's Version, plus the commit when the build knows it).</summary>
    public static string Version =>
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
}
