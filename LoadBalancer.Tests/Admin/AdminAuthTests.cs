using System.Net;
using LoadBalancer.Admin;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Tests.Admin;

// Who may POST to the admin listener: the peer check and the token check, pure.
public sealed class AdminAuthTests
{
    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("127.8.9.10", true)]
    [InlineData("::1", true)]
    [InlineData("::ffff:127.0.0.1", true)]
    [InlineData("10.0.0.7", false)]
    [InlineData("::ffff:10.0.0.7", false)]
    [InlineData("fe80::1", false)]
    public void IsLoopback_Peer(string address, bool loopback) => Assert.Equal(loopback, AdminAuth.IsLoopback(IPAddress.Parse(address)));

    [Fact]
    public void IsLoopback_NoPeer_False() => Assert.False(AdminAuth.IsLoopback(null));

    [Fact]
    public void Check_NoToken_LoopbackAllowedRemoteForbidden()
    {
        Assert.Null(AdminAuth.Check(null, null, loopback: true));
        Assert.Equal(DrainAnswer.Forbidden, AdminAuth.Check(null, null, loopback: false));
        Assert.Equal(DrainAnswer.Forbidden, AdminAuth.Check(null, "Bearer anything", loopback: false));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Bearer")]
    [InlineData("Bearer wrong")]
    [InlineData("Bearer s3cre")]
    [InlineData("Bearer s3cret!")]
    [InlineData("Basic czNjcmV0")]
    [InlineData("s3cret")]
    public void Check_TokenSetWrongOrMissing_Unauthorized_FromAnyPeer(string? header)
    {
        Assert.Equal(DrainAnswer.Unauthorized, AdminAuth.Check("s3cret", header, loopback: true));
        Assert.Equal(DrainAnswer.Unauthorized, AdminAuth.Check("s3cret", header, loopback: false));
    }

    [Fact]
    public void Check_TokenSetAndGiven_AllowedFromAnyPeer()
    {
        Assert.Null(AdminAuth.Check("s3cret", "Bearer s3cret", loopback: false));
        Assert.Null(AdminAuth.Check("s3cret", "bearer s3cret", loopback: true));
    }

    [Theory]
    [InlineData(null, null, "127.0.0.1:8081", false)]                      // curl, scripts: no browser headers
    [InlineData("http://127.0.0.1:8081", "same-origin", "127.0.0.1:8081", false)] // the dashboard's own POST
    [InlineData("http://localhost:8081", null, "LOCALHOST:8081", false)]
    [InlineData("http://evil.example", "cross-site", "127.0.0.1:8081", true)]
    [InlineData("http://evil.example", null, "127.0.0.1:8081", true)]      // an older browser: Origin only
    [InlineData(null, "cross-site", "127.0.0.1:8081", true)]
    [InlineData(null, "same-site", "127.0.0.1:8081", true)]               // another port of this machine
    [InlineData("http://127.0.0.1:9999", "same-site", "127.0.0.1:8081", true)]
    [InlineData("null", null, "127.0.0.1:8081", true)]                     // a sandboxed page or a file
    public void FromAnotherSite_BrowserHeaders(string? origin, string? secFetchSite, string host, bool refused) =>
        Assert.Equal(refused, AdminAuth.FromAnotherSite(origin, secFetchSite, host));

    [Theory]
    [InlineData("127.0.0.1:8081", true)]
    [InlineData("[::1]:8081", true)]
    [InlineData("[::1]", true)]
    [InlineData("localhost:8081", true)]
    [InlineData("localhost", true)]
    [InlineData("", true)]
    [InlineData("evil.example:8081", false)] // a name rebound to 127.0.0.1 (DNS rebinding)
    [InlineData("localhost.evil.example", false)]
    [InlineData("lb-admin.internal:8081", false)]
    public void LocalHost_HostHeader(string host, bool local) => Assert.Equal(local, AdminAuth.LocalHost(host));
}
