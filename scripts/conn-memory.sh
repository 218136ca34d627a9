#!/usr/bin/env bash
# Manual check (not part of the test suite): what a flood of clients can make the balancer hold.
# Measures the Release balancer's resident memory (VmRSS) with many client connections open:
#   (a) idle, after warm-up (the baseline)
#   (b) N idle client connections (connected, nothing sent), at most 256 connects pending at once:
#       a flood of idle connects overflows the listen backlog, and a client whose handshake the
#       kernel then drops believes it is connected while the balancer never sees it
#   (c) N connections each with one request in flight to a backend that never answers, so each
#       also holds a pooled backend connection; all N opened at once, as in (d), because a burst
#       costs a few MiB more than the same connections paced (102 against 98 MiB for 1000, once)
#   (d) limits.maxClientConnections 1000 and a flood of 4000 such connections at once: the
#       balancer accepts 1000; of the rest, the listen backlog's worth (Kestrel's 512) wait in the
#       kernel's accept queue and the others' SYNs are dropped, so they retry; RSS stays near (c)
#       for 1000 while the flood keeps knocking
#   (e) 50 connections each uploading a 1 GiB body to that backend, which never reads it: what
#       each connection holds once back-pressure reaches the client (the kernel's socket buffers
#       hold several MiB per connection more, outside RSS: hence only 50)
#   (f) the same with a GET in flight and the bytes sent after it (pipelined): no body is
#       forwarded, so what (f) holds is the balancer reading ahead of the request
# Each case gets a fresh balancer process, warmed up, so every row has its own baseline.
# Prints a Markdown table: the connections held, RSS at the end and at its peak (VmHWM), and the
# peak's KiB per connection over the baseline.
#
# Needs: the .NET 10 SDK, curl, Linux (reads /proc). Takes about 80 s after the build.
# Usage: scripts/conn-memory.sh [N ...]        # default: 1000 2000 4000
# Ports: three free ones in 18100-18199 (CONN_MEMORY_PORT_BASE to choose the first).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000 2000 4000)
limit=1000 flood=4000 uploads=${LB_UPLOADS:-50} # LB_UPLOADS: connections in (e) and (f)

# Every connection is a file descriptor in the client and the balancer, and each in-flight
# request one more in the balancer and one in the backend: the balancer needs the most.
most=$flood
for n in "${counts[@]}"; do [ "$n" -gt "$most" ] && most=$n; done
want=$((2 * most + 1000))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$want" ] || { echo "ulimit -n is $(ulimit -n), $want needed (raise the hard limit)" >&2; exit 1; }
fi

port_free() {
  if command -v ss >/dev/null; then ! ss -Hltn "sport = :$1" | grep -q .
  else ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}
base=${CONN_MEMORY_PORT_BASE:-}
if [ -z "$base" ]; then
  for b in $(seq 18100 3 18197); do
    if port_free "$b" && port_free $((b + 1)) && port_free $((b + 2)); then base=$b; break; fi
  done
  [ -n "$base" ] || { echo "no three free ports in 18100-18199" >&2; exit 1; }
fi
backend_port=$base listen_port=$((base + 1)) admin_port=$((base + 2))

work=$(mktemp -d)
backend="" lb="" client=""
stop() { # pid: TERM, then KILL if it has not gone within 5 s
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() { stop "$client"; stop "$lb"; stop "$backend"; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building (Release)..." >&2
dotnet build -c Release LoadBalancer/LoadBalancer.csproj -nologo -v quiet >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
for app in hold-backend conn-memory-client; do
  dotnet build "scripts/$app.cs" -c Release -o "$work/$app" -nologo -v quiet >"$work/$app.log" 2>&1 || { cat "$work/$app.log"; exit 1; }
done

kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$lb/status"; }
hwm() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$lb/status"; } # the process's peak RSS so far
sockets() { find "/proc/$lb/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
held() { curl -sf "http://127.0.0.1:$backend_port/held" || echo -1; }
sockets_at_least() { [ "$(sockets)" -ge "$1" ]; }
held_at_least() { [ "$(held)" -ge "$1" ]; }
held_none() { [ "$(held)" = 0 ]; }
body_mib() { sed -n 's/.* body_mib=\([0-9]*\) .*/\1/p' "$work/client.log" | tail -n 1; }
body_stalled() { local before; before=$(body_mib); sleep 1; [ -n "$before" ] && [ "$before" -gt 0 ] && [ "$(body_mib)" = "$before" ]; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Waits up to $1 seconds for a condition (the rest of the arguments) to hold.
await() {
  local seconds=$1; shift
  for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
# RSS once it stops moving: samples every 200 ms until two in a row are within 256 KiB (5 s at most).
settled_kib() {
  local prev cur
  prev=$(kib)
  for _ in $(seq 25); do
    sleep 0.2
    cur=$(kib)
    [ $((cur > prev ? cur - prev : prev - cur)) -lt 256 ] && break
    prev=$cur
  done
  echo "$cur"
}
# After a case's settle point: RSS once it stops moving, then watched for $1 more seconds (every
# 0.5 s; a background GC can commit a few MiB more seconds later). Sets rss (the last sample),
# samples (all of them, MiB) and the most sockets and held requests seen.
measure() {
  local s h
  samples=() most_sockets=0 most_held=0
  rss=$(settled_kib)
  for _ in $(seq $(($1 * 2))); do
    samples+=("$(mib "$rss")")
    s=$(($(sockets) - base_sockets)); [ "$s" -gt "$most_sockets" ] && most_sockets=$s
    h=$(held); [ "$h" -gt "$most_held" ] && most_held=$h
    sleep 0.5
    rss=$(kib)
  done
  samples+=("$(mib "$rss")")
}

start_backend() {
  dotnet "$work/hold-backend/hold-backend.dll" "$backend_port" >"$work/backend.log" 2>&1 &
  backend=$!
  await 30 curl -sf -o /dev/null "http://127.0.0.1:$backend_port/healthcheck" || { cat "$work/backend.log"; echo "the backend did not start" >&2; exit 1; }
}
start_backend

# A fresh, warmed-up balancer with limits.maxClientConnections $1; sets baseline and base_sockets.
start_lb() {
  cat >"$work/lb.json" <<JSON
{ "listen": "http://127.0.0.1:$listen_port", "admin": "http://127.0.0.1:$admin_port",
  "backends": [ { "url": "http://127.0.0.1:$backend_port" } ],
  "pool": { "maxConnectionsPerBackend": 100000, "connectTimeout": "30s" },
  "requestTimeout": "10m",
  "limits": { "maxClientConnections": $1 } }
JSON
  dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --config "$work/lb.json" >"$work/lb.log" 2>&1 &
  lb=$!
  await 30 curl -sf -o /dev/null "http://127.0.0.1:$listen_port/healthcheck" || { cat "$work/lb.log"; echo "the balancer does not forward" >&2; exit 1; }
  # Warm-up: JIT the forwarding path, then let the process settle.
  curl -sf "http://127.0.0.1:$listen_port/healthcheck?[1-200]" >/dev/null
  baseline=$(settled_kib)
  base_sockets=$(sockets)
}

stop_all() {
  stop "$client"; client=""
  stop "$lb"; lb=""
  await 30 held_none || { echo "the backend still holds $(held) requests" >&2; exit 1; }
}

rows=()
# A table row: case label, connections opened, connections the balancer should hold; the rest
# from measure. Per connection: the peak (VmHWM, which no sampling gap can miss) over the baseline.
row() {
  rows+=("$(awk -v c="$1" -v n="$2" -v h="$3" -v s="$most_sockets" -v b="$baseline" -v r="$rss" -v p="$(hwm)" 'BEGIN {
    conns = (n == h || n == 0) ? n : n " (" h " accepted)"
    per = (n == 0) ? "-" : sprintf("%.1f", (p - b) / h)
    printf "| %s | %s | %d | %.1f | %.1f | %.1f | %s |", c, conns, s, b / 1024, r / 1024, p / 1024, per }')")
  echo "${rows[-1]} RSS MiB: ${samples[*]}" >&2
}
client_status() { tail -n 1 "$work/client.log" 2>/dev/null; }
client_clean() { # nothing closed or answered by the balancer while measuring
  case "$(client_status)" in *" closed=0 answered=0") return 0 ;; *) echo "client: $(client_status)" >&2; return 1 ;; esac
}

echo "ports: backend $backend_port, balancer $listen_port, admin $admin_port" >&2

# (a) baseline, and (b) idle connections
for n in "${counts[@]}"; do
  start_lb 100000
  if [ "$n" = "${counts[0]}" ]; then measure 3; row "(a) idle, warmed up" 0 0; baseline_samples=("${samples[@]}"); fi
  dotnet "$work/conn-memory-client/conn-memory-client.dll" 127.0.0.1 "$listen_port" "$n" idle >"$work/client.log" 2>&1 &
  client=$!
  await 60 sockets_at_least $((base_sockets + n)) || { echo "the balancer holds $(sockets) sockets, wanted $((base_sockets + n)); client: $(client_status)" >&2; exit 1; }
  measure 3
  client_clean || exit 1
  row "(b) idle connections" "$n" "$n"
  stop_all
done

# (c) one request in flight per connection
for n in "${counts[@]}"; do
  start_lb 100000
  dotnet "$work/conn-memory-client/conn-memory-client.dll" 127.0.0.1 "$listen_port" "$n" request --flood >"$work/client.log" 2>&1 &
  client=$!
  await 60 held_at_least "$n" || { echo "the backend holds $(held) requests, wanted $n; client: $(client_status)" >&2; exit 1; }
  measure 3
  client_clean || exit 1
  row "(c) request in flight" "$n" "$n"
  stop_all
done

# (d) the limit against a flood: RSS sampled for 10 s after the balancer is full
start_lb "$limit"
dotnet "$work/conn-memory-client/conn-memory-client.dll" 127.0.0.1 "$listen_port" "$flood" request --flood >"$work/client.log" 2>&1 &
client=$!
await 60 held_at_least "$limit" || { echo "the backend holds $(held) requests, wanted $limit; client: $(client_status)" >&2; exit 1; }
measure 10
client_clean || exit 1
flood_client=$(client_status) flood_samples=("${samples[@]}") flood_held=$most_held
[ "$most_held" -le "$limit" ] || { echo "FAIL: the backend held $most_held requests with maxClientConnections $limit" >&2; exit 1; }
row "(d) flood, maxClientConnections $limit" "$flood" "$limit"
stop_all

# (e), (f): bytes the backend does not read; each waits until back-pressure stops the client
upload() { # label, client flag
  start_lb 100000
  dotnet "$work/conn-memory-client/conn-memory-client.dll" 127.0.0.1 "$listen_port" "$uploads" request "$2" >"$work/client.log" 2>&1 &
  client=$!
  await 60 held_at_least "$uploads" || { echo "the backend holds $(held) requests, wanted $uploads; client: $(client_status)" >&2; exit 1; }
  await 60 body_stalled || { echo "the upload did not stall; client: $(client_status)" >&2; exit 1; }
  measure 2
  client_clean || exit 1
  row "$1" "$uploads" "$uploads"
  sent_mib+=("$(body_mib)")
  # The backend never reads, so it never hears those connections close: a fresh one for the next.
  stop "$client"; client=""
  stop "$lb"; lb=""
  stop "$backend"; start_backend
}
sent_mib=()
upload "(e) request in flight, uploading a body the backend does not read" --body
upload "(f) GET in flight, bytes pipelined after it" --pipelined

echo
echo "| case | connections | balancer sockets over baseline | baseline MiB | RSS MiB | peak RSS MiB | KiB per connection (peak over baseline) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
echo
echo "(a): RSS MiB every 0.5 s for 3 s: ${baseline_samples[*]}"
echo "(d): RSS MiB every 0.5 s for 10 s while the flood waited: ${flood_samples[*]}; the backend held at most $flood_held requests"
echo "client at the end of (d): $flood_client"
echo "(e), (f): the clients had sent ${sent_mib[0]} and ${sent_mib[1]} MiB when back-pressure stopped them"
