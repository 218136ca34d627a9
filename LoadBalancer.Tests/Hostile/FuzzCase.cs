namespace LoadBalancer.Tests.Hostile;

// One generated request: its bytes, the choices that made it (Recipe; Framing is the framing
// choice alone, to group failures by), and whether a request is hidden after its body (there, a
// server that reads the framing one way and keeps the connection open would answer it: the
// contract says it must close instead).
public sealed record FuzzCase(int Index, string Recipe, string Framing, byte[] Bytes, bool HiddenAfterBody);
