#!/usr/bin/env -S dotnet run
#:sdk Microsoft.NET.Sdk.Web
// A sample backend for the demo and for trying the balancer by hand:
//   dotnet run scripts/backend.cs -- 8000
// Answers "backend-<port>" on every path, "ok" on /healthcheck, and echoes the X-Forwarded-*
// headers it received, so you can see what the balancer adds.
var port = args.Length > 0 ? int.Parse(args[0]) : 8000;
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port));
var app = builder.Build();
app.Run(async context =>
{
    if (context.Request.Path == "/healthcheck")
    {
        await context.Response.WriteAsync("ok");
        return;
    }
    var h = context.Request.Headers;
    context.Response.ContentType = "text/plain";
    await context.Response.WriteAsync($"backend-{port} {context.Request.Method} {context.Request.Path}{context.Request.QueryString}" +
        $" xff={h["X-Forwarded-For"]} proto={h["X-Forwarded-Proto"]} host={h["X-Forwarded-Host"]}\n");
});
Console.WriteLine($"backend-{port} listening on http://127.0.0.1:{port}");
app.Run();
