namespace LoadBalancer.Configuration;

// A configuration that cannot be used. Message is the one stderr line:
// "<file>: <key>: <problem>" (or "<file>: line L, column C: <problem>" for bad JSON).
public sealed class ConfigException(string message) : Exception(message);
