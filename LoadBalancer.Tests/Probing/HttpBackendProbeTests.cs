using System.Net;
using System.Net.Sockets;
using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;
using LoadBalancer.Probing;
using Microsoft.Extensions.Time.Testing;

namespace LoadBalancer.Tests.Probing;

// The real probe over a delegate-backed handler: what a status, a network error and a slow answer
// become. Time is a FakeTimeProvider: the timeout fires when the test advances it.
public sealed class HttpBackendProbeTests
{
    static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);
    static readonly HealthCheckConfig Settings = new("/healthz", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(2), 2, 2);

    readonly FakeTimeProvider _time = new();
    readonly BackendRoute _backend = new(1, "http://Backend:8000/", "http://backend:8000", new HttpMessageInvoker(MockHttpHandler.NeverSends()));

    HttpBackendProbe Probe(MockHttpHandler handler) => new(new HttpMessageInvoker(handler), _time);

    Task<ProbeResult> ProbeAsync(MockHttpHandler handler, CancellationToken cancellationToken = default) =>
        Probe(handler).ProbeAsync(_backend, Settings, cancellationToken);

    [Theory]
    [InlineData(HttpStatusCode.OK)]
    [InlineData(HttpStatusCode.NoContent)]
    [InlineData((HttpStatusCode)299)]
    public async Task ProbeAsync_2xx_Passes(HttpStatusCode status)
    {
        var result = await ProbeAsync(MockHttpHandler.Status(status)).WaitAsync(Deadline);

        Assert.True(result.Passed);
        Assert.Equal((int)status, result.Status);
        Assert.Null(result.Error);
        Assert.Same(_backend, result.Backend);
        Assert.Equal(_time.GetUtcNow(), result.At);
    }

    [Fact]
    public async Task ProbeAsync_Always_GetsTheHealthPathOfTheBackend()
    {
        var handler = MockHttpHandler.Status(HttpStatusCode.OK);

        await ProbeAsync(handler).WaitAsync(Deadline);

        var request = Assert.Single(handler.Requests);
        Assert.Equal(HttpMethod.Get, request.Method);
        Assert.Equal(new Uri("http://backend:8000/healthz"), request.RequestUri);
        Assert.Contains("LoadBalancer-HealthCheck", request.Headers.UserAgent.ToString());
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError)]
    [InlineData(HttpStatusCode.ServiceUnavailable)]
    [InlineData(HttpStatusCode.NotFound)]
    [InlineData(HttpStatusCode.MovedPermanently)] // redirects are not followed: not 2xx, failed
    [InlineData(HttpStatusCode.Continue)]
    public async Task ProbeAsync_Not2xx_FailsWithTheStatus(HttpStatusCode status)
    {
        var result = await ProbeAsync(MockHttpHandler.Status(status)).WaitAsync(Deadline);

        Assert.False(result.Passed);
        Assert.Equal((int)status, result.Status);
        Assert.Null(result.Error); // the reason is the status
    }

    [Theory]
    [InlineData(SocketError.ConnectionRefused, "connection refused")]
    [InlineData(SocketError.ConnectionReset, "connection reset")]
    [InlineData(SocketError.HostNotFound, "host not found")]
    public async Task ProbeAsync_SocketError_FailsWithItsName(SocketError error, string text)
    {
        var handler = new MockHttpHandler((_, _) => throw new HttpRequestException(
            HttpRequestError.ConnectionError, "Connection refused (backend:8000)", new SocketException((int)error)));

        var result = await ProbeAsync(handler).WaitAsync(Deadline);

        Assert.False(result.Passed);
        Assert.Null(result.Status);
        Assert.Equal(text, result.Error);
    }

    [Fact]
    public async Task ProbeAsync_ConnectionClosedBeforeAResponse_Fails()
    {
        var handler = new MockHttpHandler((_, _) => throw new HttpRequestException(HttpRequestError.ResponseEnded, "ended"));

        var result = await ProbeAsync(handler).WaitAsync(Deadline);

        Assert.False(result.Passed);
        Assert.Equal("connection closed before a response", result.Error);
    }

    [Fact]
    public async Task ProbeAsync_AnswerSlowerThanTimeout_FailsTimedOut()
    {
        // Longer than the test's deadline: only the fake clock can make this probe time out.
        var settings = Settings with { Timeout = TimeSpan.FromSeconds(30) };
        var handler = new MockHttpHandler(async (_, cancellationToken) =>
        {
            await Task.Delay(Timeout.Infinite, cancellationToken); // answers only when cancelled
            return new HttpResponseMessage(HttpStatusCode.OK);
        });

        var probe = Probe(handler).ProbeAsync(_backend, settings, CancellationToken.None);
        _time.Advance(settings.Timeout - TimeSpan.FromMilliseconds(1));
        Assert.False(probe.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var result = await probe.WaitAsync(Deadline);

        Assert.False(result.Passed);
        Assert.Null(result.Status);
        Assert.Equal("timed out after 30s", result.Error);
        Assert.Equal(settings.Timeout, result.Latency);
    }

    [Fact]
    public async Task ProbeAsync_AnswerWithinTimeout_PassesWithItsLatency()
    {
        var answer = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var probe = ProbeAsync(new MockHttpHandler((_, _) => answer.Task));

        _time.Advance(TimeSpan.FromMilliseconds(1500));
        answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        var result = await probe.WaitAsync(Deadline);

        Assert.True(result.Passed);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), result.Latency);
    }

    [Fact]
    public async Task ProbeAsync_ShutdownCancels_Throws()
    {
        using var shutdown = new CancellationTokenSource();
        var handler = new MockHttpHandler(async (_, cancellationToken) =>
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return new HttpResponseMessage(HttpStatusCode.OK);
        });

        var probe = ProbeAsync(handler, shutdown.Token);
        shutdown.Cancel();

        // Shutdown is not the backend's failure: no result at all, as IBackendProbe promises.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => probe.WaitAsync(Deadline));
    }
}
