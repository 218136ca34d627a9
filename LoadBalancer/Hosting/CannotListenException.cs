using System.Net;
using System.Net.Sockets;

namespace LoadBalancer.Hosting;

// A listener that cannot bind: the environment's problem (a port in use, no permission, an
// address this machine does not have), not the configuration's. Main prints one line naming the
// address and the reason and exits 1. Thrown by TrackingListenerFactory, which sees the bind fail
// first; Kestrel lets any exception but AddressInUseException through as it is.
public sealed class CannotListenException(IPEndPoint endPoint, string reason, Exception inner)
    : IOException($"cannot listen on http://{endPoint}: {reason}", inner)
{
    public IPEndPoint EndPoint { get; } = endPoint;
    public string Reason { get; } = reason;

    /// <summary>The reason in words when <paramref name="e"/> is a failed bind (a SocketException,
    /// or Kestrel's AddressInUseException around one); else null.</summary>
    public static string? ReasonOf(Exception e) => (e as SocketException ?? e.InnerException as SocketException) switch
    {
        { SocketErrorCode: SocketError.AddressAlreadyInUse } => "address already in use",
        { SocketErrorCode: SocketError.AccessDenied } => "permission denied",
        { SocketErrorCode: SocketError.AddressNotAvailable } => "this machine has no such address",
        { } s => s.Message,
        null => null,
    };
}
