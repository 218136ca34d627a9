#!/usr/bin/env -S dotnet run
#:sdk Microsoft.NET.Sdk.Web
// The backend for scripts/bigbody.sh:
//   dotnet run scripts/bigbody-backend.cs -- 18000
//   POST /upload             reads the whole body, answers its length
//   GET  /download?bytes=N   answers N bytes (Content-Length set), made on the fly
//   GET  /healthcheck        ok
var port = args.Length > 0 ? int.Parse(args[0]) : 18000;
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(k =>
{
    k.Limits.MaxRequestBodySize = null;
    k.Listen(System.Net.IPAddress.Loopback, port);
});
var app = builder.Build();
app.MapGet("/healthcheck", () => "ok");
app.MapPost("/upload", async (HttpContext context) =>
{
    var buffer = new byte[64 * 1024];
    long total = 0;
    int n;
    while ((n = await context.Request.Body.ReadAsync(buffer)) > 0) total += n;
    return total.ToString();
});
app.MapGet("/download", async (HttpContext context, long bytes) =>
{
    var block = new byte[64 * 1024];
    context.Response.ContentLength = bytes;
    for (long sent = 0; sent < bytes; sent += block.Length)
        await context.Response.Body.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, bytes - sent)));
});
Console.WriteLine($"bigbody backend listening on http://127.0.0.1:{port}");
app.Run();
