#!/usr/bin/env bash
# Manual check (not part of the test suite): resident memory of the Release balancer while
# a large body goes up and another comes down. The contract allows growth under 100 MiB.
#   scripts/bigbody.sh            # 1 GiB each way
#   SIZE=4294967296 scripts/bigbody.sh
# Prints the balancer's RSS after warm-up, its peak RSS (VmHWM) after the transfers, and the growth.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

SIZE=${SIZE:-1073741824}
LISTEN=${LISTEN:-18080} ADMIN=${ADMIN:-18081} BACKEND=${BACKEND:-18000}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

dotnet build -c Release LoadBalancer -v quiet -nologo >/dev/null
dotnet build scripts/bigbody-backend.cs -v quiet -nologo >/dev/null 2>&1 || true # warm the file-based app's build

cat >"$work/lb.json" <<JSON
{ "listen": "http://127.0.0.1:$LISTEN", "admin": "http://127.0.0.1:$ADMIN",
  "backends": [ { "url": "http://127.0.0.1:$BACKEND" } ] }
JSON

dotnet run scripts/bigbody-backend.cs -- "$BACKEND" >"$work/backend.log" 2>&1 &
pids+=($!)
dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --config "$work/lb.json" >"$work/lb.log" 2>&1 &
lb=$!
pids+=($lb)

wait_for() { for _ in $(seq 1 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }
wait_for "http://127.0.0.1:$BACKEND/healthcheck"
wait_for "http://127.0.0.1:$ADMIN/healthz"

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$lb/status"; }
# Warm up: JIT the paths a big body takes, then note where memory stands.
head -c 1048576 /dev/zero | curl -sS -T - -X POST "http://127.0.0.1:$LISTEN/upload" -o /dev/null
curl -sS "http://127.0.0.1:$LISTEN/download?bytes=1048576" -o /dev/null
base=$(kib VmRSS)

start=$(date +%s.%N)
up=$(head -c "$SIZE" /dev/zero | curl -sS -T - -X POST "http://127.0.0.1:$LISTEN/upload")
mid=$(date +%s.%N)
down=$(curl -sS "http://127.0.0.1:$LISTEN/download?bytes=$SIZE" -o /dev/null -w '%{size_download}')
end=$(date +%s.%N)
peak=$(kib VmHWM)

[ "$up" = "$SIZE" ] || { echo "upload: backend got $up bytes, sent $SIZE" >&2; exit 1; }
[ "$down" = "$SIZE" ] || { echo "download: got $down bytes, expected $SIZE" >&2; exit 1; }
awk -v s="$SIZE" -v b="$base" -v p="$peak" -v t0="$start" -v t1="$mid" -v t2="$end" 'BEGIN {
  printf "body %.0f MiB each way: upload %.1f s, download %.1f s\n", s / 1048576, t1 - t0, t2 - t1
  printf "balancer RSS after warm-up %.1f MiB, peak (VmHWM) %.1f MiB, growth %.1f MiB\n", b / 1024, p / 1024, (p - b) / 1024
  exit (p - b > 100 * 1024) }' || { echo "FAIL: resident memory grew by 100 MiB or more" >&2; exit 1; }
