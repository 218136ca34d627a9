#!/usr/bin/env -S dotnet run
#:sdk Microsoft.NET.Sdk.Web
// The backend for scripts/conn-memory.sh: a backend that never answers.
//   dotnet run scripts/hold-backend.cs -- 18100
//   GET /healthcheck   ok
//   GET /held          how many requests it is holding now
//   anything else      held open with no response until the client goes away or the backend stops
var port = args.Length > 0 ? int.Parse(args[0]) : 18100;
var held = 0;
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(2));
// Thousands of connections from the balancer's pool arrive at once: a long accept queue, so that
// none waits for a SYN retry and overruns the balancer's connect timeout.
builder.Services.Configure<Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets.SocketTransportOptions>(o => o.Backlog = 4096);
builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port));
var app = builder.Build();
var stopping = app.Lifetime.ApplicationStopping;
app.Run(async context =>
{
    switch (context.Request.Path.Value)
    {
        case "/healthcheck":
            await context.Response.WriteAsync("ok");
            return;
        case "/held":
            await context.Response.WriteAsync(Volatile.Read(ref held).ToString());
            return;
    }
    Interlocked.Increment(ref held);
    try
    {
        using var done = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        await Task.Delay(Timeout.Infinite, done.Token);
    }
    catch (OperationCanceledException)
    {
    }
    finally
    {
        Interlocked.Decrement(ref held);
    }
});
Console.WriteLine($"hold backend listening on http://127.0.0.1:{port}");
app.Run();
