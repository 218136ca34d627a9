using LoadBalancer.Configuration;
using LoadBalancer.Pipeline;

namespace LoadBalancer.Probing;

/// <summary>Probes one backend once. A failed probe is data (ProbeResult.Error), not an exception;
/// it throws only OperationCanceledException, when cancellationToken (shutdown) fires.</summary>
public interface IBackendProbe
{
    Task<ProbeResult> ProbeAsync(BackendRoute backend, HealthCheckConfig settings, CancellationToken cancellationToken);
}
