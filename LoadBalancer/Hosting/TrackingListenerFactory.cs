using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;

namespace LoadBalancer.Hosting;

// Kestrel's transport (the socket transport), decorated so that ShutdownDrain holds every
// listener Kestrel binds and can unbind it before Kestrel's own stop. Kestrel resolves all
// registered IConnectionListenerFactory services and binds each endpoint with the last one
// registered that can bind it; Decorate wraps each registration in place, so that choice is
// unchanged. The listener goes back to Kestrel as it is, except the client listener's, which is
// gated by ClientConnectionLimit. A bind that fails becomes a CannotListenException.
public sealed class TrackingListenerFactory(IConnectionListenerFactory inner, ShutdownDrain drain)
    : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => inner is not IConnectionListenerFactorySelector selector || selector.CanBind(endpoint);

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        IConnectionListener listener;
        try
        {
            listener = await inner.BindAsync(endpoint, cancellationToken);
        }
        catch (Exception e) when (endpoint is IPEndPoint ip && CannotListenException.ReasonOf(e) is { } reason)
        {
            throw new CannotListenException(ip, reason, e); // Main: one line, exit 1
        }
        // The client listener stops accepting at limits.maxClientConnections.
        if (endpoint is ClientConnectionLimit.GatedEndPoint gated) listener = gated.Limit.Gate(listener);
        drain.Track(listener);
        return listener;
    }

    /// <summary>Wraps every registered transport factory (the web host registers the socket
    /// transport when the builder is created) in a TrackingListenerFactory.</summary>
    public static void Decorate(IServiceCollection services)
    {
        var found = false;
        for (var i = 0; i < services.Count; i++)
        {
            var d = services[i];
            if (d.ServiceType != typeof(IConnectionListenerFactory) || d.IsKeyedService) continue;
            services[i] = ServiceDescriptor.Describe(typeof(IConnectionListenerFactory),
                sp => new TrackingListenerFactory(Create(sp, d), sp.GetRequiredService<ShutdownDrain>()), d.Lifetime);
            found = true;
        }
        // Fail at startup rather than let a stop keep listening.
        if (!found) throw new InvalidOperationException("no Kestrel transport (IConnectionListenerFactory) is registered yet");
    }

    static IConnectionListenerFactory Create(IServiceProvider sp, ServiceDescriptor d) =>
        (IConnectionListenerFactory)(d.ImplementationInstance
            ?? d.ImplementationFactory?.Invoke(sp)
            ?? ActivatorUtilities.CreateInstance(sp, d.ImplementationType!));
}
