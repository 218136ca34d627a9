using LoadBalancer.Forwarding;
using Microsoft.AspNetCore.Http;

namespace LoadBalancer.Tests.Forwarding;

// X-Request-Id: which client values are kept, what a new one looks like, where it is put.
public sealed class RequestIdTests
{
    [Theory]
    [InlineData("abc-123")]
    [InlineData("0af7651916cd43dd8448eb211c80319c")]
    [InlineData("f81d4fae-7dec-11d0-a765-00a0c91e6bf6")]
    [InlineData("!~{}[]=+/")]
    public void IsUsable_VisibleAscii_Kept(string value) => Assert.True(RequestId.IsUsable(value));

    [Theory]
    [InlineData("")]
    [InlineData("a b")]         // a space would split a log field
    [InlineData("a\tb")]
    [InlineData("caf\u00e9")]   // not ASCII
    [InlineData("a\u007fb")]    // DEL
    public void IsUsable_NotVisibleAscii_Replaced(string value) => Assert.False(RequestId.IsUsable(value));

    [Fact]
    public void IsUsable_Length_UpTo128()
    {
        Assert.True(RequestId.IsUsable(new string('a', RequestId.MaxLength)));
        Assert.False(RequestId.IsUsable(new string('a', RequestId.MaxLength + 1)));
    }

    [Fact]
    public void New_SixteenLowerCaseHexCharacters_DifferentEachTime()
    {
        var ids = Enumerable.Range(0, 1000).Select(_ => RequestId.New()).ToList();

        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{16}$", id));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void Assign_ClientSentAUsableId_KeptOnTheRequest()
    {
        var context = new DefaultHttpContext();
        context.Request.Headers[RequestId.Header] = "abc-123";

        Assert.Equal("abc-123", RequestId.Assign(context));
        Assert.Equal("abc-123", context.Request.Headers[RequestId.Header]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("one|two")] // two header lines: which one would the backend believe?
    public void Assign_NoneOrUnusable_ANewOneReplacesItOnTheRequest(string sent)
    {
        var context = new DefaultHttpContext();
        if (sent.Length > 0) context.Request.Headers[RequestId.Header] = sent.Split('|');

        var id = RequestId.Assign(context);

        Assert.Matches("^[0-9a-f]{16}$", id);
        Assert.Equal(id, context.Request.Headers[RequestId.Header]);
    }

    [Fact]
    public void Echo_TheRequestsId_OnTheResponse()
    {
        var context = new DefaultHttpContext();
        var id = RequestId.Assign(context);
        context.Response.Headers[RequestId.Header] = "the-backends-own";

        RequestId.Echo(context);

        Assert.Equal(id, context.Response.Headers[RequestId.Header]);
    }
}
