using System.Net;
using LoadBalancer.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Resilience;

// Forwarding, "bodies stream both ways" and "no request-body size limit": bodies far larger
// than Kestrel's 30 MB default pass whole, and a body cut off by the backend is never handed
// to the client as if it were complete.
public sealed class StreamingTests
{
    const long Large = 128L * 1024 * 1024;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Get_BackendResetsMidBody_ClientSeesBrokenBodyAndNextRequestWorks(bool contentLength)
    {
        var first = 1;
        await using var backend = await TestBackend.StartAsync("a", handler: async context =>
        {
            if (Interlocked.Exchange(ref first, 0) == 0)
            {
                await context.Response.Body.WriteAsync("backend-a"u8.ToArray());
                return;
            }
            if (contentLength) context.Response.ContentLength = 1_000_000;
            await context.Response.Body.WriteAsync(new byte[100_000]);
            await context.Response.Body.FlushAsync();
            context.Abort(); // headers and part of the body are out; the rest never comes
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        using var response = await lb.Client.GetAsync("/", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadAsStreamAsync();
        var broken = await Record.ExceptionAsync(() => GeneratedBody.ReadAsync(body));

        Assert.True(broken is HttpRequestException or IOException, $"reading the cut body fails, got: {broken}");
        Assert.Equal("backend-a", await lb.Client.GetStringAsync("/"));
        var status = await lb.WaitForStatusAsync(backend, s => s.InFlight() == 0 && s.Requests() == 2);
        Assert.Equal(1, status.Failures());
        Assert.Equal(2, backend.Requests); // a response that had begun is never retried
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Post_BodyLargerThanKestrelDefaultLimit_ArrivesWhole(bool knownLength)
    {
        await using var backend = await TestBackend.StartAsync("sink", handler: async context =>
        {
            var (length, sha) = await GeneratedBody.ReadAsync(context.Request.Body);
            await context.Response.WriteAsync($"{length} {Convert.ToHexString(sha)}");
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));
        var content = new GeneratedBody.Content(Large, knownLength);

        using var response = await lb.Client.PostAsync("/upload", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"{Large} {Convert.ToHexString(content.Sha256!)}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Get_LargeResponseBody_StreamsThroughWhole()
    {
        var sent = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = await TestBackend.StartAsync("source", handler: async context =>
        {
            context.Response.ContentLength = Large;
            sent.TrySetResult(await GeneratedBody.WriteAsync(context.Response.Body, Large));
        });
        await using var lb = await Balancer.StartAsync(Balancer.Config(backend));

        using var response = await lb.Client.GetAsync("/download", HttpCompletionOption.ResponseHeadersRead);
        var (length, sha) = await GeneratedBody.ReadAsync(await response.Content.ReadAsStreamAsync());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Large, length);
        Assert.Equal(Convert.ToHexString(await sent.Task.WaitAsync(TimeSpan.FromSeconds(5))), Convert.ToHexString(sha));
    }
}
