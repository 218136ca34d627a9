using LoadBalancer.Forwarding;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Forwarding;

// The balancer's own gRPC answers (GrpcErrors), without a server: the status each HTTP answer
// becomes, and the trailers-only response it writes.
public sealed class GrpcErrorsTests
{
    [Theory]
    [InlineData(502, 14)]
    [InlineData(503, 14)]
    [InlineData(504, 4)]
    [InlineData(408, 4)]
    [InlineData(400, 13)]
    [InlineData(501, 12)]
    public void StatusFor_HttpAnswer_GrpcStatus(int http, int grpc) => Assert.Equal(grpc, GrpcErrors.StatusFor(http));

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc-web+proto", true)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void IsGrpc_ByContentType(string? contentType, bool expected)
    {
        var context = new DefaultHttpContext();
        context.Request.ContentType = contentType;

        Assert.Equal(expected, GrpcErrors.IsGrpc(context.Request));
    }

    [Fact]
    public async Task WriteAsync_TrailersOnly200WithPercentEncodedMessage()
    {
        var context = new DefaultHttpContext();
        context.Response.StatusCode = 502;

        await GrpcErrors.WriteAsync(context, 503, "no healthy backends: 100% down, ünïcode", retryAfter: "1", close: false);

        Assert.Equal(200, context.Response.StatusCode);
        Assert.Equal("application/grpc", context.Response.ContentType);
        Assert.Equal("14", context.Response.Headers["grpc-status"]);
        Assert.Equal("no healthy backends: 100%25 down, %C3%BCn%C3%AFcode", context.Response.Headers["grpc-message"]);
        Assert.Equal(0, context.Response.Body.Length);
    }
}
