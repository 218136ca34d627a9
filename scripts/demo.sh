#!/usr/bin/env bash
# The demo: three sample backends, the balancer on the root lb.json, traffic rotating over them;
# one backend dies, the balancer notices and routes around it; it comes back and gets traffic again.
# Runs to its end by itself; exits 0 when everything happened as shown. Stops all it started,
# also on Ctrl+C.    Usage: scripts/demo.sh
# Ports: backends on BASE, BASE+1, BASE+2, the balancer on BASE+80 and its admin listener on
# BASE+81, where BASE is $LB_DEMO_PORT_BASE (default 8000: 8000-8002, 8080, 8081, as in lb.json).
#   LB_DEMO_PORT_BASE=18000 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${LB_DEMO_PORT_BASE:-8000}
[[ "$BASE" =~ ^[0-9]+$ ]] && [ "$BASE" -ge 1 ] && [ "$BASE" -le 65454 ] \
  || { echo "LB_DEMO_PORT_BASE must be a port from 1 to 65454 (it uses that port to port+81), not \"$BASE\"" >&2; exit 2; }
PORTS=($BASE $((BASE + 1)) $((BASE + 2)))
LB_PORT=$((BASE + 80))
ADMIN_PORT=$((BASE + 81))
LB=http://127.0.0.1:$LB_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
DOWN=${PORTS[1]} # the backend the demo stops and brings back
work=$(mktemp -d)
pids=()
declare -A backend_pid

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\n\033[31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}" "${backend_pid[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# Every port free first, or say which is not (a connect that succeeds: something listens there).
for port in "${PORTS[@]}" $LB_PORT $ADMIN_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port is in use: stop what runs there, or pick other ports with LB_DEMO_PORT_BASE (now $BASE)"
  fi
done

# lb.json as it is for the default ports; with another base, a copy with the demo's ports
# (through placeholders, so that a new port is never rewritten again by a later rule).
config=lb.json
if [ "$BASE" != 8000 ]; then
  config="$work/lb.json"
  sed -e '/"listen"/s/:8080"/:@LB@"/; /"admin"/s/:8081"/:@ADMIN@"/; s/:8000"/:@B0@"/; s/:8001"/:@B1@"/; s/:8002"/:@B2@"/' \
      -e "s/@LB@/$LB_PORT/; s/@ADMIN@/$ADMIN_PORT/; s/@B0@/${PORTS[0]}/; s/@B1@/${PORTS[1]}/; s/@B2@/${PORTS[2]}/" \
      lb.json >"$config"
  for port in "${PORTS[@]}" $LB_PORT $ADMIN_PORT; do
    grep -q "127.0.0.1:$port\"" "$config" || fail "lb.json no longer has the demo's ports (8000-8002, 8080, 8081): cannot move them to base $BASE"
  done
fi

say "Building the balancer (Release) and the sample backend (scripts/backend.cs)"
dotnet build LoadBalancer/LoadBalancer.csproj -c Release -nologo -v quiet >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build"; }
dotnet build scripts/backend.cs -o "$work/backend" -nologo -v quiet >"$work/backend-build.log" 2>&1 || { cat "$work/backend-build.log"; fail "backend build"; }

start_backend() {
  dotnet "$work/backend/backend.dll" "$1" >"$work/backend-$1.log" 2>&1 &
  backend_pid[$1]=$!
}

# wait_for URL PATTERN SECONDS: poll until the body matches (no fixed sleeps: poll with a deadline).
wait_for() {
  local deadline=$((SECONDS + $3))
  until curl -s --max-time 1 "$1" 2>/dev/null | grep -q "$2"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

state_of() { # state_of PORT -> the backend's state in /status
  curl -s "$ADMIN/status" | tr -d ' \n' | grep -o "\"url\":\"http://127.0.0.1:$1\",[^}]*\"state\":\"[a-z]*\"" | grep -o '"state":"[a-z]*"' | cut -d'"' -f4
}

# traffic N -> prints which backend answered each of N requests; fails on any non-200.
traffic() {
  local out=() code body
  for _ in $(seq "$1"); do
    body=$(curl -s -w ' %{http_code}' "$LB/hello") || fail "request failed"
    code=${body##* }
    [ "$code" = 200 ] || fail "got HTTP $code: $body"
    out+=("$(echo "$body" | cut -d' ' -f1)")
  done
  echo "${out[*]}"
}

say "Starting three backends on ports ${PORTS[*]}"
for port in "${PORTS[@]}"; do start_backend "$port"; done
for port in "${PORTS[@]}"; do wait_for "http://127.0.0.1:$port/healthcheck" ok 30 || fail "backend $port did not start"; done

say "Checking the configuration: dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --check --config $config"
dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --check --config "$config" | sed 's/^/   /' || fail "the configuration check"

say "Starting the balancer: dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --config $config"
dotnet LoadBalancer/bin/Release/net10.0/LoadBalancer.dll --config "$config" >"$work/lb.log" 2>&1 &
pids+=($!)
wait_for "$ADMIN/healthz" ok 30 || { cat "$work/lb.log"; fail "the balancer did not start"; }
sed 's/^/   lb| /' "$work/lb.log"

say "Six requests rotate over the three backends (round-robin)"
seen=$(traffic 6); echo "   $seen"
for port in "${PORTS[@]}"; do [[ "$seen" == *"backend-$port"* ]] || fail "backend-$port got no traffic"; done

say "Killing backend $DOWN: the health checker notices (GET /healthcheck every 2s, 2 failures)"
kill "${backend_pid[$DOWN]}"; wait "${backend_pid[$DOWN]}" 2>/dev/null || true; unset "backend_pid[$DOWN]"
echo "   requests keep succeeding meanwhile (a refused connection is retried on another backend):"
echo "   $(traffic 6)"
deadline=$((SECONDS + 20))
until [ "$(state_of $DOWN)" = unhealthy ]; do [ $SECONDS -lt $deadline ] || fail "$DOWN never went unhealthy"; sleep 0.2; done
grep 'is now' "$work/lb.log" | tail -n 1 | sed 's/^/   lb| /'

say "Six requests now share the two live backends evenly"
seen=$(traffic 6); echo "   $seen"
[[ "$seen" != *"backend-$DOWN"* ]] || fail "the dead backend got traffic"
n0=$(grep -o "backend-${PORTS[0]}" <<<"$seen" | wc -l); n2=$(grep -o "backend-${PORTS[2]}" <<<"$seen" | wc -l)
[ "$n0" = 3 ] && [ "$n2" = 3 ] || fail "uneven: ${PORTS[0]} got $n0, ${PORTS[2]} got $n2"

say "Bringing backend $DOWN back: two passed probes make it healthy again"
start_backend $DOWN
deadline=$((SECONDS + 30))
until [ "$(state_of $DOWN)" = healthy ]; do [ $SECONDS -lt $deadline ] || fail "$DOWN never came back"; sleep 0.2; done
grep 'is now' "$work/lb.log" | tail -n 1 | sed 's/^/   lb| /'
seen=$(traffic 6); echo "   $seen"
[[ "$seen" == *"backend-$DOWN"* ]] || fail "$DOWN got no traffic after coming back"

say "What the balancer thinks (GET $ADMIN/status, abridged)"
curl -s "$ADMIN/status" | grep -E '"(url|state|requests|failures)"' | sed 's/^ */   /'

say "Demo finished: everything behaved as shown"
