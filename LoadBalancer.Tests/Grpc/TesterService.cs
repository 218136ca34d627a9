using Grpc.Core;

namespace LoadBalancer.Tests.Grpc;

// The test service behind the balancer (tester.proto). Records what it saw, so a test can tell
// that a deadline reached the backend as a cancellation.
public sealed class TesterService(GrpcBackend backend) : Tester.TesterBase
{
    public override async Task<EchoReply> Echo(EchoRequest request, ServerCallContext context)
    {
        await context.WriteResponseHeadersAsync(new Metadata { { "x-backend-header", backend.Name } });
        context.ResponseTrailers.Add("x-backend-trailer", backend.Name);
        return new EchoReply { Text = request.Text, Backend = backend.Name };
    }

    public override async Task Count(CountRequest request, IServerStreamWriter<EchoReply> responseStream, ServerCallContext context)
    {
        for (var i = 1; i <= request.N; i++)
            await responseStream.WriteAsync(new EchoReply { Text = i.ToString(), Backend = backend.Name }, context.CancellationToken);
        context.ResponseTrailers.Add("x-count", request.N.ToString());
    }

    public override async Task<SumReply> Sum(IAsyncStreamReader<Number> requestStream, ServerCallContext context)
    {
        var reply = new SumReply();
        await foreach (var number in requestStream.ReadAllAsync(context.CancellationToken))
        {
            reply.Sum += number.Value;
            reply.Count++;
        }
        return reply;
    }

    public override async Task<EchoReply> Hang(EchoRequest request, ServerCallContext context)
    {
        backend.HangStarted.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            backend.HangCancelled.TrySetResult();
            throw;
        }
        return new EchoReply();
    }

    public override Task<EchoReply> Fail(FailRequest request, ServerCallContext context) =>
        throw new RpcException(new Status((StatusCode)request.Code, request.Detail), new Metadata { { "x-failed-on", backend.Name } });
}
