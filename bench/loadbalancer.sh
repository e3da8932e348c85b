#!/usr/bin/env bash
# Several server processes behind a standard TCP load balancer (HAProxy, from Debian's packages),
# all on loopback: starts two `audiosocket echo` processes, HAProxy in front of them, runs
# simulated calls through HAProxy and checks that calls were spread over both servers and that
# every call echoed every frame. Stops everything it started. Needs root for apt-get when
# HAProxy is missing.
#
# With `websocket` as the third argument the same runs over chan_websocket: each echo process
# serves it on its own port (--websocket), HAProxy runs the configuration of docs/scaling.md
# (`mode http`, `timeout tunnel`, a health check on the 426), and the calls are
# `audiosocket call --websocket`.
#
#   npm run build && bash bench/loadbalancer.sh [CALLS] [SECONDS] [audiosocket|websocket]
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-40}
SECONDS_=${2:-3}
TRANSPORT=${3:-audiosocket}
case "$TRANSPORT" in audiosocket | websocket) ;; *) echo "transport must be audiosocket or websocket, got $TRANSPORT" >&2; exit 2 ;; esac
CLI="node dist/cli/main.js"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "logs kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v haproxy >/dev/null; then
  echo "installing haproxy from Debian's packages..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null) || {
    echo "cannot install haproxy" >&2
    exit 1
  }
fi

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
P1=$(free_port); P2=$(free_port); PF=$(free_port)

if [ "$TRANSPORT" = websocket ]; then
  # AudioSocket on a free port each; chan_websocket on P1 and P2, behind HAProxy.
  $CLI echo --host 127.0.0.1 --port 0 --websocket "$P1" --websocket-path /media --json >"$WORK/s1.log" 2>&1 & PIDS+=($!)
  $CLI echo --host 127.0.0.1 --port 0 --websocket "$P2" --websocket-path /media --json >"$WORK/s2.log" 2>&1 & PIDS+=($!)
else
  $CLI echo --host 127.0.0.1 --port "$P1" --json >"$WORK/s1.log" 2>&1 & PIDS+=($!)
  $CLI echo --host 127.0.0.1 --port "$P2" --json >"$WORK/s2.log" 2>&1 & PIDS+=($!)
fi

# HAProxy starts once both listen, so its first health checks find them up.
for f in s1 s2; do
  for _ in $(seq 50); do grep -q listening "$WORK/$f.log" && break; sleep 0.1; done
done

if [ "$TRANSPORT" = websocket ]; then
  cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  timeout tunnel 1h
  option redispatch
frontend chan_websocket
  bind 127.0.0.1:$PF
  default_backend media
backend media
  balance leastconn
  option httpchk GET /
  http-check expect status 426
  server m1 127.0.0.1:$P1 check
  server m2 127.0.0.1:$P2 check
CFG
else
  cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
frontend audiosocket
  bind 127.0.0.1:$PF
  default_backend servers
backend servers
  balance roundrobin
  server s1 127.0.0.1:$P1
  server s2 127.0.0.1:$P2
CFG
fi
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 & PIDS+=($!)

sleep 0.5
if ! kill -0 "${PIDS[2]}" 2>/dev/null; then
  echo "haproxy did not start:" >&2
  cat "$WORK/haproxy.log" >&2
  exit 1
fi

echo "haproxy on 127.0.0.1:$PF -> echo servers on :$P1 and :$P2 ($TRANSPORT); $CALLS calls for $SECONDS_ s"
if [ "$TRANSPORT" = websocket ]; then
  TARGET=(--websocket "ws://127.0.0.1:$PF/media")
else
  TARGET=("127.0.0.1:$PF")
fi
set +e
$CLI call "${TARGET[@]}" --calls "$CALLS" --duration "$SECONDS_" --json >"$WORK/calls.log" 2>"$WORK/calls.err"
STATUS=$?
set -e
sleep 0.3

node - "$WORK" "$CALLS" "$STATUS" <<'JS'
const fs = require('fs');
const [dir, calls, status] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const read = (f) => fs.readFileSync(`${dir}/${f}`, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const s1 = read('s1.log').filter((e) => e.event === 'call').length;
const s2 = read('s2.log').filter((e) => e.event === 'call').length;
const summaries = read('calls.log').filter((e) => e.event === 'summary');
// AudioSocket: frames echoed back; chan_websocket: frames the simulated channel played (the echo).
const echoed = (s) => (s.transport === 'websocket' ? s.framesPlayed : s.audioFramesReceived);
const bad = summaries.filter((s) => echoed(s) < s.framesSent - 1 || s.violations > 0);
console.log(`server 1: ${s1} calls, server 2: ${s2} calls; ${summaries.length} calls finished, ${bad.length} with missing echoes or violations; call exit status ${status}`);
const p99 = summaries.map((s) => s.interArrival.p99Ms).sort((a, b) => a - b);
console.log(`inter-arrival p99 across calls: median ${p99[p99.length >> 1]} ms, worst ${p99.at(-1)} ms`);
const ok = status === 0 && s1 > 0 && s2 > 0 && s1 + s2 === calls && summaries.length === calls && bad.length === 0;
console.log(ok ? 'PASS: calls spread over both servers and every call echoed' : 'FAIL');
process.exit(ok ? 0 : 1);
JS
