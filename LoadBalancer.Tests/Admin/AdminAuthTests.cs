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
}
