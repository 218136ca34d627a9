#!/usr/bin/env bash
# A load benchmark you can run on your own machine: the Release build of the balancer in front of
# three sample backends (scripts/backend.cs), loaded by wrk. Prints requests/s, latency
# percentiles, the balancer's CPU time per request and its peak RSS.
#
# Needs: the .NET 10 SDK and wrk (Debian/Ubuntu: apt-get install wrk). Linux (reads /proc).
# Usage: scripts/bench.sh [--connections 64] [--duration 15] [--warmup 30] [--keepalive-off]
# With 2+ cores the balancer is pinned to the last core and wrk + backends to the others, so the
# balancer's CPU per request is measured without the client's noise. For a side-by-side with
# nginx, HAProxy and YARP on one machine, see docs/performance.md (compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

connections=64 duration=15 warmup=30 keepalive=on
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) connections=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --keepalive-off) keepalive=off; shift ;;
    *) echo "usage: $0 [--connections N] [--duration S] [--warmup S] [--keepalive-off]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

base=${BENCH_PORT_BASE:-18100}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

cores=$(nproc)
if [ "$cores" -ge 2 ]; then lb_cpu=$((cores - 1)); client_cpus="0-$((cores - 2))"; pin_lb="taskset -c $lb_cpu"; pin_client="taskset -c $client_cpus"
else pin_lb=""; pin_client=""; fi

echo "building (Release)..."
dotnet build LoadBalancer/LoadBalancer.csproj -c Release -nologo -v quiet >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
dotnet build scripts/backend.cs -c Release -o "$work/backend" -nologo -v quiet >"$work/backend.log" 2>&1 || { cat "$work/backend.log"; exit 1; }

for i in 1 2 3; do
  $pin_client dotnet "$work/backend/backend.dll" $((base + i)) >/dev/null 2>&1 &
  pids+=($!)
done
cat >"$work/lb.json" <<JSON
{ "listen": "http://127.0.0.1:$((base + 10))", "admin": "http://127.0.0.1:$((base + 11))",
  "backends": [ {"url":"http://127.0.0.1:$((base + 1))"}, {"url":"http://127.0.0.1:$((base + 2))"}, {"url":"http://127.0.0.1:$((base + 3))"} ] }
JSON
$pin_lb dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --config "$work/lb.json" >"$work/lb.log" 2>&1 &
lb=$!; pids+=($lb)
for _ in $(seq 150); do curl -s "http://127.0.0.1:$((base + 1))/healthcheck" >/dev/null 2>&1 && curl -s "http://127.0.0.1:$((base + 11))/healthz" 2>/dev/null | grep -q ok && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$((base + 10))/" >/dev/null || { cat "$work/lb.log"; echo "the balancer does not answer" >&2; exit 1; }

header=()
[ "$keepalive" = off ] && header=(-H "Connection: close")
url="http://127.0.0.1:$((base + 10))/"
echo "warming up for ${warmup}s (tiered JIT and dynamic PGO settle under load)..."
$pin_client wrk -t1 -c"$connections" -d"${warmup}s" "${header[@]}" "$url" >/dev/null

cpu() { awk '{print $14 + $15}' "/proc/$lb/stat"; }   # utime + stime, in clock ticks
ticks=$(getconf CLK_TCK)
before=$(cpu)
$pin_client wrk -t1 -c"$connections" -d"${duration}s" --latency "${header[@]}" "$url" | tee "$work/wrk.txt"
after=$(cpu)

requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
peak=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$lb/status")
us=$(awk -v c=$((after - before)) -v t="$ticks" -v n="$requests" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
echo
echo "keep-alive $keepalive, $connections connections, ${duration}s: $rps requests/s, balancer CPU ${us} us/request, peak RSS ${peak} MiB"
