#!/usr/bin/env bash
# Cost per unit of work of kube-lc-proxy against HAProxy (TCP, leastconn, one thread), in one run:
# proxy CPU per GB (iperf3, one stream; bulk1 client to server, bulk1r server to client), per
# new connection (wrk, Connection: close) and per HTTP/2 request (h2load), plus RSS at rest and
# per idle connection. Shorter than bench/run.sh (no direct runs, no report): for checking one
# change to the data path. Same pinning and backends as the bench.
#
#   bench/profile-cost.sh                      # this tree's dist/
#   BENCH_COST_BASE=DIR bench/profile-cost.sh  # also a second build (DIR holds bin/ and dist/)
#   BENCH_COST_NODE_OPTS='--max-semi-space-size=1' bench/profile-cost.sh   # node flags to test
#   BENCH_COST_ENV='UV_USE_IO_URING=0' bench/profile-cost.sh              # environment to test
# (the flags and the environment apply to this tree's proxy only, not to the BENCH_COST_BASE one).
#   BENCH_COST_FLAGS='--workers 1' bench/profile-cost.sh   # `run` flags, for both proxies
#
# Prints one line per figure: the mean of BENCH_REPS runs for each proxy and the ratio to HAProxy
# (runs alternate between the proxies, so other work on the machine hits both alike).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_OUT=${BENCH_OUT:-bench/out/cost}
BENCH_NET=${BENCH_NET:-127.0.93}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_COST_SECONDS=${BENCH_COST_SECONDS:-5}
BENCH_COST_SUITES=${BENCH_COST_SUITES:-rss idle bulk1 bulk1r connrate h2}
# shellcheck source=bench/lib.sh
source bench/lib.sh

rm -rf "$OUT"
bench_init
ensure_deps
ensure_build
snapshot_build
check_addresses_free
render_configs
start_backends
start_haproxy haproxy "$OUT/conf/haproxy.cfg" "$BENCH_PROXY_CPU" "$BENCH_NET.60"
HAPROXY_PID=$LAST_PID
CLK_TCK=$(getconf CLK_TCK)
LOADP=$(pin "$BENCH_LOAD_CPU")
RESULTS=$OUT/cost.tsv
: >"$RESULTS"

# The proxies under test: name -> pid. `klp` is this tree; `base` the build in BENCH_COST_BASE.
declare -A PID_OF
start_all() { # IP_OF_SERVICE (last octet of the ClusterIP in the tracked manifests)
  local octet=$1 mport=$METRICS_PORT_TRACKED
  local env_saved=("${KLP_ENV[@]}")
  KLP_NODE_OPTS=${BENCH_COST_NODE_OPTS:-}
  # shellcheck disable=SC2206 # words on purpose: VAR=VALUE pairs
  KLP_ENV+=(${BENCH_COST_ENV:-})
  # shellcheck disable=SC2086 # flags, split on purpose
  start_klp klp "$OUT/manifests/tracked.yaml" "$mport" "$BENCH_NET.$octet" ${BENCH_COST_FLAGS:-}
  PID_OF[klp]=$LAST_PID
  KLP_ENV=("${env_saved[@]}")
  if [[ -n ${BENCH_COST_BASE:-} ]]; then
    local saved=$KLP_BIN
    KLP_BIN=$BENCH_COST_BASE/bin/kube-lc-proxy.js
    KLP_NODE_OPTS=
    # shellcheck disable=SC2086 # flags, split on purpose
    start_klp base "$OUT/manifests/untracked.yaml" "$METRICS_PORT_UNTRACKED" \
      "$BENCH_NET.$(base_octet "$octet")" ${BENCH_COST_FLAGS:-}
    PID_OF[base]=$LAST_PID
    KLP_BIN=$saved
  fi
  PID_OF[haproxy]=$HAPROXY_PID
}
stop_all() {
  stop_pid "${PID_OF[klp]}"
  [[ -n ${PID_OF[base]:-} ]] && stop_pid "${PID_OF[base]}"
  unset 'PID_OF[base]'
}
names() {
  local n=(klp haproxy)
  [[ -n ${PID_OF[base]:-} ]] && n=(base klp haproxy)
  echo "${n[@]}"
}

# units SUITE FILE: the work a load generator's output reports (bytes, connections, requests).
units() {
  case $1 in
  bulk1 | bulk1r) jq '.end.sum_received.bytes' "$2" ;;
  connrate) awk '/requests in/{print $1}' "$2" ;;
  h2) awk '/^requests:/{print $8}' "$2" ;;
  esac
}

# one SUITE NAME TARGET_IP REP CMD...: one run, CPU ticks of the proxy before and after.
one() {
  local suite=$1 name=$2 rep=$3 pid=${PID_OF[$2]} c0 c1 file
  shift 3
  file="$OUT/raw/$suite-$name-$rep.txt"
  c0=$(cpu_ticks "$pid")
  run_load "$suite-$name" "$file" 120 "$@" || log "warning: $suite $name exited non-zero"
  c1=$(cpu_ticks "$pid")
  printf '%s\t%s\t%s\t%s\t%s\n' "$suite" "$name" "$rep" "$(((c1 - c0)))" "$(units "$suite" "$file")" >>"$RESULTS"
}

# The second manifest (bench/conf/manifests.yaml.in rendered as "untracked") puts bulk on .54,
# http on .55 and h2 on .53.
base_octet() { case $1 in 50) echo 54 ;; 51) echo 55 ;; 52) echo 53 ;; esac; }

# target NAME OCTET: the address a proxy listens on for the suite's Service.
target() {
  case $1 in
  klp) echo "$BENCH_NET.$2" ;;
  base) echo "$BENCH_NET.$(base_octet "$2")" ;;
  haproxy) echo "$BENCH_NET.$((60 + $2 - 50))" ;;
  esac
}

suite() { # SUITE OCTET
  local s=$1 octet=$2 rep n t
  start_all "$octet"
  for n in $(names); do # warm-up (JIT, first connections)
    t=$(target "$n" "$octet")
    case $s in
    bulk1 | bulk1r) run_load warm "$OUT/logs/warm.txt" 60 $LOADP iperf3 -c "$t" -p 8080 -t 2 || true ;;
    connrate) run_load warm "$OUT/logs/warm.txt" 60 $LOADP wrk -t1 -c50 -d2s -H 'Connection: close' "http://$t:8080/" || true ;;
    h2) run_load warm "$OUT/logs/warm.txt" 60 $LOADP h2load -c 10 -m 10 -D 2 "http://$t:8080/" >/dev/null || true ;;
    esac
    sleep 1
  done
  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    for n in $(names); do
      t=$(target "$n" "$octet")
      case $s in
      bulk1) one bulk1 "$n" "$rep" $LOADP iperf3 -c "$t" -p 8080 -t "$BENCH_COST_SECONDS" -J ;;
      bulk1r) one bulk1r "$n" "$rep" $LOADP iperf3 -c "$t" -p 8080 -t "$BENCH_COST_SECONDS" -R -J ;;
      connrate) one connrate "$n" "$rep" $LOADP wrk -t1 -c50 -d"${BENCH_COST_SECONDS}s" -H 'Connection: close' "http://$t:8080/" ;;
      h2) one h2 "$n" "$rep" $LOADP h2load -c 10 -m 10 -D "$BENCH_COST_SECONDS" "http://$t:8080/" ;;
      esac
      sleep 1
    done
  done
  stop_all
}

# idle_rss NAME: RSS growth of a proxy per idle connection, with BENCH_COST_IDLE connections
# open through it to nginx (which holds a silent connection for its 60 s header timeout).
BENCH_COST_IDLE=${BENCH_COST_IDLE:-5000}
idle_rss() {
  local n=$1 pid=${PID_OF[$1]} t r0 r1
  t=$(target "$n" 51)
  r0=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")
  # Opens the connections, prints "open" once all are up, holds them until stdin closes.
  coproc HOLD { "$NODE" -e '
    const net = require("node:net");
    const [host, count] = [process.argv[1], Number(process.argv[2])];
    const socks = []; let up = 0;
    for (let i = 0; i < count; i++) {
      const s = net.connect({ host, port: 8080 }, () => { if (++up === count) console.log("open"); });
      s.on("error", (e) => { console.error(e.message); process.exit(1); });
      socks.push(s);
    }
    process.stdin.on("end", () => process.exit(0)).resume();' "$t" "$BENCH_COST_IDLE"; }
  local line=
  read -r -t 30 line <&"${HOLD[0]}" || true
  [[ $line == open ]] || log "warning: idle connections through $n did not all open"
  sleep 2
  r1=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")
  exec {HOLD[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  # KiB per connection, recorded as bytes over connections.
  printf 'idle\t%s\t1\t%s\t%s\n' "$n" "$(((r1 - r0) * 1024))" "$BENCH_COST_IDLE" >>"$RESULTS"
  sleep 2
}

for s in $BENCH_COST_SUITES; do
  case $s in
  idle)
    start_all 51
    sleep 2
    for n in $(names); do idle_rss "$n"; done
    stop_all
    ;;
  rss)
    start_all 51
    sleep 3
    for n in $(names); do
      printf 'rss\t%s\t1\t%s\t1\n' "$n" "$(awk '/^VmRSS:/{print $2}' "/proc/${PID_OF[$n]}/status")" >>"$RESULTS"
    done
    stop_all
    ;;
  bulk1) suite bulk1 50 ;;
  bulk1r) suite bulk1r 50 ;;
  connrate) suite connrate 51 ;;
  h2) suite h2 52 ;;
  esac
done

# Per unit: CPU seconds per GB, microseconds per connection and per request; RSS in MiB, and in
# bytes per idle connection.
awk -F'\t' -v hz="$CLK_TCK" '
  { key = $1 SUBSEP $2; ticks[key] += $4; units[key] += $5; seen[$1] = 1; who[$2] = 1 }
  function per(s, n) {
    if (units[s SUBSEP n] == 0) return 0
    if (s == "rss") return ticks[s SUBSEP n] / 1024
    if (s == "idle") return ticks[s SUBSEP n] / units[s SUBSEP n]
    if (s ~ /^bulk1/) return ticks[s SUBSEP n] / hz / (units[s SUBSEP n] / 1e9)
    return 1e6 * ticks[s SUBSEP n] / hz / units[s SUBSEP n]
  }
  END {
    unit["rss"] = "MiB at rest"; unit["bulk1"] = "CPU s per GB"; unit["bulk1r"] = "CPU s per GB (server to client)"; unit["idle"] = "RSS bytes per idle conn"
    unit["connrate"] = "CPU us per connection"; unit["h2"] = "CPU us per request"
    for (s in seen) {
      h = per(s, "haproxy"); line = sprintf("%-9s %-22s", s, unit[s])
      for (n in who) if ((s SUBSEP n) in ticks)
        line = line sprintf("  %s %.3f (%.2fx)", n, per(s, n), h > 0 ? per(s, n) / h : 0)
      print line
    }
  }' "$RESULTS"
