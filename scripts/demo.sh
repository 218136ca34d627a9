#!/usr/bin/env bash
# The demo: three sample backends, the balancer on the root lb.json, traffic rotating over them;
# one backend dies, the balancer notices and routes around it; it comes back and gets traffic again.
# The balancer writes a json access log (one line of it is shown). Then a second balancer serves
# HTTPS (HTTP/2 by ALPN) on the same backends with a throwaway certificate made by openssl.
# Runs to its end by itself; exits 0 when everything happened as shown. Stops all it started,
# also on Ctrl+C.    Usage: scripts/demo.sh
# Ports: backends on BASE, BASE+1, BASE+2, the balancer on BASE+80 and its admin listener on
# BASE+81, the HTTPS balancer on BASE+82 and its admin listener on BASE+83, where BASE is
# $LB_DEMO_PORT_BASE (default 8000: 8000-8002, 8080, 8081 as in lb.json, and 8082, 8083).
#   LB_DEMO_PORT_BASE=18000 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${LB_DEMO_PORT_BASE:-8000}
[[ "$BASE" =~ ^[0-9]+$ ]] && [ "$BASE" -ge 1 ] && [ "$BASE" -le 65452 ] \
  || { echo "LB_DEMO_PORT_BASE must be a port from 1 to 65452 (it uses that port to port+83), not \"$BASE\"" >&2; exit 2; }
PORTS=($BASE $((BASE + 1)) $((BASE + 2)))
LB_PORT=$((BASE + 80))
ADMIN_PORT=$((BASE + 81))
LB=http://127.0.0.1:$LB_PORT
ADMIN=http://127.0.0.1:$ADMIN_PORT
TLS_PORT=$((BASE + 82))
TLS_ADMIN_PORT=$((BASE + 83))
TLS_LB=https://127.0.0.1:$TLS_PORT
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

# What the HTTPS step needs: openssl for the certificate, a curl that speaks HTTP/2.
# Without them the rest of the demo runs and the HTTPS step says why it is skipped.
https_skip=""
command -v openssl >/dev/null || https_skip="it needs openssl (to make a throwaway certificate)"
curl -V | grep -q 'HTTP2' || https_skip="it needs a curl built with HTTP/2 (curl -V lists HTTP2 under Features)"

# Every port free first, or say which is not (a connect that succeeds: something listens there).
for port in "${PORTS[@]}" $LB_PORT $ADMIN_PORT $TLS_PORT $TLS_ADMIN_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port is in use: stop what runs there, or pick other ports with LB_DEMO_PORT_BASE (now $BASE)"
  fi
done

# A copy of lb.json in the temp dir: the demo's ports (through placeholders, so that a new port is
# never rewritten again by a later rule), and a json access log next to it (access.log: the path
# is relative to the config file's folder).
config="$work/lb.json"
access_log="$work/access.log"
sed -e '/"listen"/s/:8080"/:@LB@"/; /"admin"/s/:8081"/:@ADMIN@"/; s/:8000"/:@B0@"/; s/:8001"/:@B1@"/; s/:8002"/:@B2@"/' \
    -e "s/@LB@/$LB_PORT/; s/@ADMIN@/$ADMIN_PORT/; s/@B0@/${PORTS[0]}/; s/@B1@/${PORTS[1]}/; s/@B2@/${PORTS[2]}/" \
    -e '/"admin"/a\
  "accessLog": { "path": "access.log", "format": "json" },' \
    lb.json >"$config"
for port in "${PORTS[@]}" $LB_PORT $ADMIN_PORT; do
  grep -q "127.0.0.1:$port\"" "$config" || fail "lb.json no longer has the demo's ports (8000-8002, 8080, 8081): cannot move them to base $BASE"
done
grep -q '"accessLog"' "$config" || fail "lb.json no longer has an \"admin\" line to put the access log after"

say "Building the balancer as it ships (scripts/shipped-cmd.sh: Native AOT) and the sample backend (scripts/backend.cs)"
# One native executable; without a C toolchain the script says so and the Release dll runs instead.
read -r -a lb < <(scripts/shipped-cmd.sh 2>"$work/build.log" | tail -n 1) || true
[ "${#lb[@]}" -gt 0 ] || { cat "$work/build.log"; fail "build"; }
grep -q 'Native AOT build failed' "$work/build.log" && sed 's/^/   /' "$work/build.log"
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

# wait_lines FILE N SECONDS: poll until FILE has N lines (the access-log writer flushes when idle).
wait_lines() {
  local deadline=$((SECONDS + $3))
  until [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; do
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

say "Checking the configuration: ${lb[*]} --check --config $config"
"${lb[@]}" --check --config "$config" | sed 's/^/   /' || fail "the configuration check"

say "Starting the balancer: ${lb[*]} --config $config"
"${lb[@]}" --config "$config" >"$work/lb.log" 2>&1 &
pids+=($!)
wait_for "$ADMIN/healthz" ok 30 || { cat "$work/lb.log"; fail "the balancer did not start"; }
sed 's/^/   lb| /' "$work/lb.log"

say "Six requests rotate over the three backends (round-robin)"
seen=$(traffic 6); echo "   $seen"
for port in "${PORTS[@]}"; do [[ "$seen" == *"backend-$port"* ]] || fail "backend-$port got no traffic"; done

say "The access log (accessLog: json, to $access_log): its last line, the sixth request"
wait_lines "$access_log" 6 5 || fail "the access log has not 6 lines after 6 requests: $(wc -l <"$access_log" 2>/dev/null || echo no file)"
line=$(tail -n 1 "$access_log")
echo "   $line"
[[ "$line" == *'"status":200'* ]] || fail "the access-log line has no \"status\":200"
[[ "$line" =~ \"backend\":\"http://127\.0\.0\.1:($(IFS='|'; echo "${PORTS[*]}"))\" ]] || fail "the access-log line has no \"backend\" naming one of the backends"

say "Killing backend $DOWN: the health checker notices (GET /healthcheck every 2s, 2 failures)"
kill "${backend_pid[$DOWN]}"; wait "${backend_pid[$DOWN]}" 2>/dev/null || true; unset "backend_pid[$DOWN]"
echo "   requests keep succeeding meanwhile (a refused connection is retried on another backend):"
echo "   $(traffic 6)"
# The access log tells the retry, when one of those six met the dead backend first.
if wait_lines "$access_log" 12 5 && retry=$(grep 'connect-refused' "$access_log" | tail -n 1) && [ -n "$retry" ]; then
  echo "   the access log has a retry: $(grep -o '"status":[0-9]*,' <<<"$retry") $(grep -o '"attempts":\[[^]]*\]' <<<"$retry")"
fi
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

https_step() {
say "HTTPS: a throwaway certificate for 127.0.0.1 and a second balancer on $TLS_LB (admin $TLS_ADMIN_PORT)"
echo "   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 \
  || { cat "$work/openssl.log"; fail "openssl could not make the certificate"; }
# The same copy, listening on https with the pair (paths relative to the file), its own admin port,
# no access log.
tls_config="$work/lb-https.json"
sed -e "/\"listen\"/s|\"http://127.0.0.1:$LB_PORT\"|\"https://127.0.0.1:$TLS_PORT\"|" \
    -e "/\"admin\"/s|:$ADMIN_PORT\"|:$TLS_ADMIN_PORT\"|" \
    -e '/"accessLog"/d' \
    -e '/"listen"/a\
  "tls": { "certificate": "cert.pem", "key": "key.pem" },' \
    "$config" >"$tls_config"
grep -q "\"https://127.0.0.1:$TLS_PORT\"" "$tls_config" && grep -q "127.0.0.1:$TLS_ADMIN_PORT\"" "$tls_config" \
  || fail "could not make the https copy of $config"
grep -E '"(listen|tls|admin)"' "$tls_config" | sed 's/^ */   /'
"${lb[@]}" --config "$tls_config" >"$work/lb-https.log" 2>&1 &
tls_pid=$!
pids+=($tls_pid)
wait_for "http://127.0.0.1:$TLS_ADMIN_PORT/healthz" ok 30 || { cat "$work/lb-https.log"; fail "the https balancer did not start"; }
sed 's/^/   lb-https| /' "$work/lb-https.log"
# Its health checker admits the backends after its first probes: poll until an answer comes.
deadline=$((SECONDS + 20))
until body=$(curl -s --max-time 2 --cacert "$work/cert.pem" "$TLS_LB/") && [[ "$body" == backend-* ]]; do
  [ $SECONDS -lt $deadline ] || fail "no answer over https from $TLS_LB/ (body: ${body:-none}); its log: $(tail -n 3 "$work/lb-https.log")"
  sleep 0.2
done
echo "   \$ curl --cacert cert.pem $TLS_LB/"
echo "   $body"
[[ "$body" == *"proto=https"* ]] || fail "the backend was not told the client came over https (X-Forwarded-Proto)"
echo "   \$ curl --http2 --cacert cert.pem -w ' HTTP/%{http_version}' $TLS_LB/    (three times)"
for _ in 1 2 3; do
  out=$(curl -s --http2 --cacert "$work/cert.pem" -w ' HTTP/%{http_version} %{http_code}' "$TLS_LB/") || fail "curl --http2 $TLS_LB/ failed"
  code=${out##* }; out=${out% *}; version=${out##* }
  echo "   ${out%% *} ... $version"
  [ "$code" = 200 ] || fail "got HTTP $code over https: $out"
  [ "$version" = HTTP/2 ] || fail "HTTP/2 was not negotiated (curl says $version)"
done

say "Stopping the https balancer (SIGTERM)"
kill "$tls_pid"
rc=0; wait "$tls_pid" || rc=$?
left=(); for pid in "${pids[@]}"; do [ "$pid" = "$tls_pid" ] || left+=("$pid"); done; pids=("${left[@]}")
tail -n 1 "$work/lb-https.log" | sed 's/^/   lb-https| /'
[ "$rc" = 0 ] || fail "the https balancer exited with $rc"

}
if [ -z "$https_skip" ]; then https_step; else say "HTTPS: skipped: $https_skip"; fi

say "Demo finished: everything behaved as shown"
