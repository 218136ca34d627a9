using LoadBalancer.Tests.Support;

namespace LoadBalancer.Tests;

// The Debug line per probe: a probe has a status or an error, and the line shows the one it has
// (it used to print "error (null)" after every answered probe).
public sealed class LogTests
{
    readonly LogSink _logs = new();

    [Fact]
    public void ProbeResult_Answered_StatusAndNoErrorPart()
    {
        Log.ProbeResult(_logs.CreateLogger("LoadBalancer"), "http://127.0.0.1:8000", 200, 1.5, null);

        Assert.Equal("Probe http://127.0.0.1:8000: status 200, 1.5 ms", Assert.Single(_logs.Lines).Message);
    }

    [Fact]
    public void ProbeResult_Failed_TheErrorAndNoStatusPart()
    {
        Log.ProbeResult(_logs.CreateLogger("LoadBalancer"), "http://127.0.0.1:8000", null, 0.5, "connection refused");

        Assert.Equal("Probe http://127.0.0.1:8000: connection refused, 0.5 ms", Assert.Single(_logs.Lines).Message);
    }
}
