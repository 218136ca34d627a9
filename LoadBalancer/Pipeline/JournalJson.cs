using System.Text.Json.Serialization;

namespace LoadBalancer.Pipeline;

// The journal's JSON, made at compile time (System.Text.Json source generation): camelCase names,
// enums by their C# name ("ConnectRefused"), nulls written. The records are in JournalEntry.cs.
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(JournalEntry))]
internal sealed partial class JournalJson : JsonSerializerContext;
