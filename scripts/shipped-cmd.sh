#!/usr/bin/env bash
# Builds the form of the balancer that the README ships (Native AOT: one native executable, no JIT
# warm-up, about a third of the JIT build's memory; docs/performance.md, "Native AOT") and prints,
# as its last line, the command that starts it, without --config. compare.sh --project . runs this
# and measures what it prints (../shared/bench/README.md). Needs a C toolchain (clang or gcc) for
# the native link; without one it says so on stderr and prints the Release dll's command instead.
#
# Built for this machine's CPU (IlcInstructionSet=native: it runs where it was built) and for speed
# over size (OptimizationPreference=Speed): together 6% less CPU per request than the defaults
# (compare.sh, docs/performance.md).
#
#   scripts/shipped-cmd.sh            # builds, then prints e.g. /path/LoadBalancer/bin/shipped/LoadBalancer
set -uo pipefail
cd "$(dirname "$0")/.."
out="$PWD/LoadBalancer/bin/shipped"
if dotnet publish LoadBalancer/LoadBalancer.csproj -c Release -r linux-x64 -p:PublishAot=true \
     -p:OptimizationPreference=Speed -p:IlcInstructionSet=native -o "$out" \
     -nologo -v:q -nodeReuse:false >"$out.log" 2>&1 && [[ -x "$out/LoadBalancer" ]]; then
  echo "$out/LoadBalancer"
else
  tail -n 5 "$out.log" >&2
  echo "shipped-cmd.sh: the Native AOT build failed (above; a C toolchain, clang or gcc, is needed); using the Release dll" >&2
  dotnet build LoadBalancer/LoadBalancer.csproj -c Release -nologo -v:q -nodeReuse:false >&2 || exit 1
  echo "dotnet $PWD/LoadBalancer/bin/Release/net10.0/LoadBalancer.dll"
fi
