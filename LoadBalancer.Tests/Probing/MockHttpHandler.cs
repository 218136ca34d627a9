namespace LoadBalancer.Tests.Probing;

// A delegate-backed HttpMessageHandler, as in YARP's test/ReverseProxy.Tests/Common/MockHttpHandler.cs:
// the test decides what "the network" answers, without a socket. Also tells whether it was disposed
// (a BackendRoute disposes its pool when a drained backend is removed).
public sealed class MockHttpHandler(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> send) : HttpMessageHandler
{
    /// <summary>A handler for routes that must never send (unit tests of the rules).</summary>
    public static MockHttpHandler NeverSends() =>
        new((_, _) => throw new InvalidOperationException("this test does not expect a request"));

    public static MockHttpHandler Status(System.Net.HttpStatusCode status) =>
        new((_, _) => Task.FromResult(new HttpResponseMessage(status)));

    public List<HttpRequestMessage> Requests { get; } = [];

    public bool Disposed { get; private set; }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        lock (Requests) Requests.Add(request);
        return send(request, cancellationToken);
    }

    protected override void Dispose(bool disposing)
    {
        Disposed = true;
        base.Dispose(disposing);
    }
}
