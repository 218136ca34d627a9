#!/usr/bin/env bash
# Startup time, the balancer against YARP (issue 16, item 4): from process start to the first
# proxied 200, with the same backend, both pinned to one core (as compare.sh pins them), rounds
# interleaved so drift hits both alike. Prints every round, the medians and the ratio.
#
#   scripts/startup.sh [ROUNDS=7]
#   BENCH_DIR=../shared/bench scripts/startup.sh    # where yarp-baseline/ lives (default: that path)
#   LB_CMD="..."                                    # the balancer's command without --config
#                                                   # (default: scripts/shipped-cmd.sh's last line if it
#                                                   # exists, else the Release dll)
#
# "Start" is the moment before exec; "first 200" is the first curl through the listener that gets
# a 200 from the backend (curl every 2 ms, each with a 1 s cap). Ports 18090-18092 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
BENCH_DIR=${BENCH_DIR:-../shared/bench}
BE=18090 LB=18091 ADMIN=18092
tmp=$(mktemp -d /tmp/lb-startup.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

echo "building the balancer and yarp-baseline (Release)" >&2
dotnet build LoadBalancer/LoadBalancer.csproj -c Release -nologo -v:q -nodeReuse:false >/dev/null
dotnet build "$BENCH_DIR/yarp-baseline/YarpBaseline.csproj" -c Release -nologo -v:q -nodeReuse:false -o "$tmp/yarp" >/dev/null
if [[ -z ${LB_CMD:-} ]]; then
  if [[ -x scripts/shipped-cmd.sh ]]; then LB_CMD=$(scripts/shipped-cmd.sh | tail -n 1)
  else LB_CMD="dotnet $PWD/LoadBalancer/bin/Release/net10.0/LoadBalancer.dll"; fi
fi

# One backend: python's http.server, 200 on every path (it is up before any round starts).
cat >"$tmp/backend.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$tmp/backend.py" $BE & pids+=($!)
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$BE/" >/dev/null 2>&1 && break; sleep 0.05; done

cat >"$tmp/lb.json" <<JSON
{ "listen": "http://127.0.0.1:$LB", "admin": "http://127.0.0.1:$ADMIN",
  "backends": [ { "url": "http://127.0.0.1:$BE" } ], "healthCheck": { "interval": "10s" } }
JSON

# Starts "$@" pinned to CPU 1, returns ms from exec to the first proxied 200.
measure() {
  local start end
  start=$(date +%s%N)
  DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production taskset -c 1 "$@" >"$tmp/out.log" 2>&1 &
  local pid=$!
  until [[ $(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$LB/" 2>/dev/null) == 200 ]]; do
    kill -0 $pid 2>/dev/null || { cat "$tmp/out.log" >&2; echo "exited before answering" >&2; exit 1; }
    sleep 0.002
  done
  end=$(date +%s%N)
  kill $pid; wait $pid 2>/dev/null || true
  echo $(( (end - start) / 1000000 ))
}

project=() yarp=()
for r in $(seq 1 "$ROUNDS"); do
  # shellcheck disable=SC2086
  p=$(measure $LB_CMD --config "$tmp/lb.json")
  y=$(measure dotnet "$tmp/yarp/YarpBaseline.dll" --listen "http://127.0.0.1:$LB" --backend "http://127.0.0.1:$BE")
  project+=("$p") yarp+=("$y")
  echo "round $r: project $p ms, yarp $y ms" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mp=$(median "${project[@]}") my=$(median "${yarp[@]}")
echo "command: $LB_CMD"
echo "startup to first proxied 200 (median of $ROUNDS): project $mp ms, yarp $my ms, project/yarp $(awk -v a="$mp" -v b="$my" 'BEGIN{printf "%.2f", a/b}')"
