using System.Net;
using LoadBalancer.Configuration;
using LoadBalancer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LoadBalancer;

// The host around the pipeline: what is logged, and the two listeners Kestrel binds (the client
// one behind the connection gate, with TLS on an https listen; the admin one marked so that its
// requests reach the admin endpoints). Program.Build calls these; the stages are wired there.
public static partial class Program
{
    static void ConfigureLogging(ILoggingBuilder logging, Options options)
    {
        logging.ClearProviders();
        logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        // We log each failed forward ourselves, at Debug. YARP logs every one at Warning with a
        // stack trace, even an attempt that is then retried and succeeds: keep only its errors.
        logging.AddFilter("Yarp", LogLevel.Error);
        // The host logs a failed start with its stack trace ("Hosting failed to start") and
        // rethrows: Main says a listener that cannot bind in one line, and anything else
        // surfaces with its trace anyway. A failed BackgroundService is still logged (Critical).
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        options.Logging?.Invoke(logging);
    }

    /// <summary>Where Kestrel bound the two listeners, known once it has started (port 0 included).</summary>
    sealed class Listeners
    {
        public ListenOptions? Client, Admin;
    }

    static Listeners ConfigureListeners(WebApplicationBuilder builder, LbConfig config, ClientConnectionLimit connectionLimit, ServerCertificate? certificate)
    {
        var listeners = new Listeners();
        builder.Services.Configure<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions>(o =>
        {
            o.UnsafePreferInlineScheduling = Environment.GetEnvironmentVariable(InlineCompletions) == "1";
            // Read-ahead per client connection, at the socket: the transport's default (1 MiB) let a
            // client that sends faster than its backend reads make the balancer hold about 1.3 MiB
            // per connection (scripts/conn-memory.sh, cases e and f; docs/performance.md).
            o.MaxReadBufferSize = ReadAhead;
        });
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null; // no body limit: bodies stream through
            // Slow-loris: Kestrel's own timer, checked on its heartbeat (408, then close).
            k.Limits.RequestHeadersTimeout = config.Limits.RequestHeadersTimeout;
            k.Limits.MaxRequestBufferSize = ReadAhead; // the same bound past the transport
            k.Listen(connectionLimit.EndPoint(EndPoint(config.Listen)), l =>
            {
                listeners.Client = l;
                // Kestrel's HTTP/2 limits stay as they are. On https both, and the pair's ALPN offers
                // what listenProtocols says (a reload changes it); on http one, fixed when it binds.
                l.Protocols = certificate is null ? config.ListenProtocols : HttpProtocols.Http1AndHttp2;
                l.Use(connectionLimit.Release);
                l.Use(k.ApplicationServices.GetRequiredService<ShutdownDrain>().CountConnections);
                if (certificate is not null)
                {
                    l.UseHttps(certificate.HandshakeOptions()); // innermost: the counts above include handshakes
                    l.Use(certificate.RequireAgreedProtocol);
                }
            });
            k.Listen(EndPoint(config.Admin), l =>
            {
                listeners.Admin = l;
                l.Use(next => connection => { connection.Items[AdminConnection] = AdminConnection; return next(connection); });
            });
        });
        return listeners;
    }

    static readonly object AdminConnection = new();

    static bool IsAdmin(HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionItemsFeature>()?.Items.ContainsKey(AdminConnection) == true;

    static IPEndPoint EndPoint(Uri uri) =>
        new(uri.IsLoopback && !IPAddress.TryParse(uri.Host.Trim('[', ']'), out _) ? IPAddress.Loopback : IPAddress.Parse(uri.Host.Trim('[', ']')), uri.Port);
}
