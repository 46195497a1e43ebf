#!/usr/bin/env bash
# kube-lc-proxy benchmark, on loopback, against HAProxy 2.6 (TCP mode, leastconn, one thread)
# and, for HTTP/2, the per-request L7 balancers users pick instead (HAProxy `mode http` with h2
# on both sides, nginx `grpc_pass`):
#   1. memory: RSS at rest, and per idle HTTP/2 connection with 5,000 open;
#   2. latency added to a fixed-rate HTTP/2 load (h2load --rps, per-request log);
#   3. bulk throughput (iperf3), 4. new-connection rate (wrk, Connection: close, against nginx),
#   5. HTTP/2 request rate (h2load against nghttpd), each direct and through every proxy, with
#      the proxy's CPU per GB, per connection and per request;
#   6. --workers 1 and 2 against HAProxy nbthread 1 and 2 on the same CPUs.
#
#   npm run bench            # or bench/run.sh; as root on Debian bookworm it installs what is missing
#
# Writes raw outputs to bench/out/ (gitignored) and regenerates docs/benchmarks.md.
# Settings (environment): see the top of bench/lib.sh. Takes 12 to 15 minutes on a quiet machine;
# up to about 18 when other work on the machine makes it wait and rerun disturbed runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
source bench/lib.sh

STARTED=$(date +%s)
bench_init
rm -rf "$OUT/raw" "$OUT/logs" "$OUT/runs.tsv" "$OUT/commands.tsv" "$OUT/rss.tsv" "$OUT/meta.tsv" \
  "$OUT/idle.tsv" "$OUT"/metrics-*.txt
mkdir -p "$OUT/raw" "$OUT/logs"
touch "$OUT/runs.tsv" "$OUT/commands.tsv" "$OUT/rss.tsv"

ensure_deps
ensure_build
snapshot_build
check_addresses_free
render_configs

meta() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/meta.tsv"; }
collect_meta() {
  meta date "$(date -u +'%Y-%m-%d %H:%M UTC')"
  meta cpu_model "$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)"
  meta cpus "$(nproc)"
  meta virtualization "$(lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/{print $2}')"
  meta memory "$(awk '/^MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  meta kernel "$(uname -r)"
  meta os "$(. /etc/os-release && echo "$PRETTY_NAME")"
  meta node "$("$NODE" --version)"
  meta haproxy "$(haproxy -v | head -1 | awk '{print $3}')"
  meta nginx "$(nginx -v 2>&1 | sed 's|.*nginx/||')"
  meta wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}' | sed 's|^debian/||')"
  meta iperf3 "$(iperf3 --version | head -1 | awk '{print $2}')"
  meta h2load "$(h2load --version | awk '{print $2}' | sed 's|^nghttp2/||')"
  meta commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  # --no-optional-locks: only reads, never refreshes the index.
  meta src_changed "$(git --no-optional-locks status --porcelain -- src 2>/dev/null | wc -l)"
  meta build "$(cat "$OUT/build-status")"
  meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
  meta sysctl "tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse) ip_local_port_range=$(sysctl -n net.ipv4.ip_local_port_range | tr '\t' '-') somaxconn=$(sysctl -n net.core.somaxconn)"
  meta pin "$BENCH_PIN"
  meta load_cpu "$BENCH_LOAD_CPU"
  meta proxy_cpu "$BENCH_PROXY_CPU"
  meta reps "$BENCH_REPS"
  meta net "$BENCH_NET"
  meta workers "$BENCH_WORKERS"
  meta lat_clients "$BENCH_LAT_CLIENTS"
  meta lat_rps "$BENCH_LAT_RPS"
  meta lat_seconds "$BENCH_LAT_SECONDS"
  meta lat_reps "$BENCH_LAT_REPS"
  meta idle_conns "$BENCH_IDLE_CONNS"
  meta workers_cpus "$BENCH_WORKERS_CPUS"
  meta workers_reps "$BENCH_WORKERS_REPS"
  meta workers_seconds "$BENCH_WORKERS_SECONDS"
  meta nofile "$(ulimit -n)"
}
collect_meta
BUSY=$(wait_quiet)
meta busy_before "$BUSY"
((BUSY <= ${BENCH_QUIET_BUSY:-10})) || log "warning: the machine is ${BUSY}% busy with other work; results will be noisy"

CLK_TCK=$(getconf CLK_TCK)
LOADP=$(pin "$BENCH_LOAD_CPU")

# Per-CPU counters from /proc/stat: "cpuN busy total steal" for every CPU, one line each.
cpu_snapshot() {
  awk '$1 ~ /^cpu[0-9]+$/ { busy = $2 + $3 + $4 + $7 + $8; total = busy + $5 + $6 + $9
    print $1, busy, total, $9 }' /proc/stat
}

# run_once SUITE CASE REP ATTEMPT PROXY_PID CMD...: one run of a load generator; sets RUN_LINE
# (its runs.tsv line) and RUN_FOREIGN. Records the CPU time of the proxy in the path (PROXY_PID,
# or -) and its RSS after the run, how busy the load CPU and the proxy CPU were, the hypervisor's
# steal time and the CPU time other processes used meanwhile.
RUN_LINE=
RUN_FOREIGN=
run_once() {
  local suite=$1 case=$2 rep=$3 attempt=$4 ppid=$5
  shift 5
  local file="$OUT/raw/$suite-$case-r$rep-a$attempt.txt" rc=0 c0=0 c1=0 t0 t1 s0 s1 f0 f1 busy
  f0=$(foreign_ticks)
  [[ $ppid != - ]] && c0=$(cpu_ticks "$ppid")
  s0=$(cpu_snapshot)
  # @LOG@ in the command is this run's own per-request log (h2load --log-file appends to it).
  local args=() a
  rm -f "${file%.txt}.log"
  for a in "$@"; do args+=("${a//@LOG@/${file%.txt}.log}"); done
  t0=$(date +%s.%N)
  run_load "$suite-$case" "$file" 120 "${args[@]}" || rc=$?
  t1=$(date +%s.%N)
  s1=$(cpu_snapshot)
  [[ $ppid != - ]] && c1=$(cpu_ticks "$ppid")
  f1=$(foreign_ticks)
  local rss=
  [[ $ppid != - ]] && rss=$(awk '/^VmRSS:/{print $2}' "/proc/$ppid/status" 2>/dev/null || true)
  ((rc == 0)) || log "warning: $suite $case run $rep exited with status $rc"
  RUN_FOREIGN=$(awk -v a="$f0" -v b="$f1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" \
    'BEGIN { d = b - a; if (d < 0) d = 0; printf "%.1f", 100 * d / ((t1 - t0) * hz) }')
  busy=$(printf '%s\n%s\n' "$s0" "$s1" | awk -v lc="cpu$BENCH_LOAD_CPU" -v pc="cpu$BENCH_PROXY_CPU" '
    { if ($1 in b) { db[$1] = $2 - b[$1]; dt[$1] = $3 - t[$1]; ds += $4 - st[$1]; tt += $3 - t[$1] }
      else { b[$1] = $2; t[$1] = $3; st[$1] = $4 } }
    function pct(a, b) { return b > 0 ? 100 * a / b : 0 }
    END { printf "%.1f\t%.1f\t%.2f", pct(db[lc], dt[lc]), pct(db[pc], dt[pc]), pct(ds, tt) }')
  RUN_LINE=$(awk -v s="$suite" -v c="$case" -v r="$rep" -v f="${file#"$OUT"/}" -v t0="$t0" \
    -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" -v rc="$rc" -v p="$ppid" -v busy="$busy" \
    -v fo="$RUN_FOREIGN" -v at="$attempt" -v rss="$rss" \
    'BEGIN { printf "%s\t%s\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s", s, c, r, f, t1 - t0,
       (p == "-" ? "" : sprintf("%.2f", (c1 - c0) / hz)), rc, busy, fo, at, rss }')
}

# measure SUITE CASE REP PROXY_PID CMD...: one recorded run. A run that other work disturbed
# (see BENCH_FOREIGN_MAX) is run once more while the phase's retry budget lasts, and the less
# disturbed of the two is kept.
RETRIES_LEFT=$BENCH_RETRY_BUDGET
RETRIES=0
measure() {
  local suite=$1 case=$2 rep=$3 ppid=$4 first first_foreign
  shift 4
  record_cmd "$suite-$case" "$@"
  run_once "$suite" "$case" "$rep" 1 "$ppid" "$@"
  if ((RETRIES_LEFT > 0 && $(date +%s) - STARTED < BENCH_RETRY_UNTIL)) &&
    awk -v f="$RUN_FOREIGN" -v m="$BENCH_FOREIGN_MAX" 'BEGIN { exit !(f > m) }'; then
    RETRIES_LEFT=$((RETRIES_LEFT - 1))
    RETRIES=$((RETRIES + 1))
    log "$suite $case run $rep: other processes used ${RUN_FOREIGN}% of a core; running it again"
    first=$RUN_LINE
    first_foreign=$RUN_FOREIGN
    sleep 2
    run_once "$suite" "$case" "$rep" 2 "$ppid" "$@"
    if awk -v a="$first_foreign" -v b="$RUN_FOREIGN" 'BEGIN { exit !(a < b) }'; then
      RUN_LINE=$first
    fi
  fi
  printf '%s\n' "$RUN_LINE" >>"$OUT/runs.tsv"
  log "$suite $case run $rep done"
}

# run_suite SUITE PAUSE_S CASE... : BENCH_REPS rounds; each round runs every case once, the order
# rotated per round so no case always runs first or last. "case_SUITE CASE REP" runs one case.
run_suite() {
  local suite=$1 pause=$2 rep i n
  shift 2
  local cases=("$@")
  n=${#cases[@]}
  for ((rep = 1; rep <= BENCH_REPS; rep++)); do
    for ((i = 0; i < n; i++)); do
      "case_${suite}" "${cases[(i + rep - 1) % n]}" "$rep"
      sleep "$pause"
    done
  done
}

# Targets: host:port and the proxy in the path, per case.
declare -A TARGET PROXY_PID
set_targets() { # DIRECT_IP:PORT KLP_IP HAPROXY_IP [UNTRACKED_KLP_IP]
  TARGET[direct]=$1
  TARGET[klp]=$2:8080
  TARGET[haproxy]=$3:8080
  TARGET[klp-untracked]=${4:-}:8080
  TARGET[haproxy-http]=$BENCH_NET.63:8080
  TARGET[nginx-grpc]=$BENCH_NET.64:8080
}

case_bulk1() { bulk "$1" "$2" 1; }
case_bulk4() { bulk "$1" "$2" 4; }
bulk() {
  local case=$1 rep=$2 streams=$3 host=${TARGET[$1]%:*} port=${TARGET[$1]##*:}
  measure "bulk$streams" "$case" "$rep" "${PROXY_PID[$case]}" \
    $LOADP iperf3 -c "$host" -p "$port" -t "$BENCH_IPERF_SECONDS" -P "$streams" -J
}

case_connrate() {
  local case=$1 rep=$2
  measure connrate "$case" "$rep" "${PROXY_PID[$case]}" \
    $LOADP wrk -t1 -c"$BENCH_WRK_CONNECTIONS" -d"${BENCH_WRK_SECONDS}s" -H 'Connection: close' \
    --latency "http://${TARGET[$case]}/"
}

case_h2() {
  local case=$1 rep=$2
  measure h2 "$case" "$rep" "${PROXY_PID[$case]}" \
    $LOADP h2load -c 10 -m 10 -D "$BENCH_H2_SECONDS" "http://${TARGET[$case]}/"
}

# warmup CMD...: an unrecorded short run (JIT, caches, first connections); tried twice, as the
# iperf3 server can still be busy with the start-up probe.
warmup() {
  run_load warmup "$OUT/logs/warmup.log" 60 "$@" && return
  sleep 1
  run_load warmup "$OUT/logs/warmup.log" 60 "$@" || log "warning: warm-up failed: $*"
}

record_rss() { # PHASE INSTANCE PID
  printf '%s\t%s\t%s\n' "$1" "$2" "$(peak_rss_kib "$3")" >>"$OUT/rss.tsv"
}

# shellcheck source=bench/phases.sh
source bench/phases.sh

log "starting backends, HAProxy (TCP and HTTP) and nginx grpc_pass"
start_backends
start_haproxy haproxy "$OUT/conf/haproxy.cfg" "$BENCH_PROXY_CPU" "$BENCH_NET.60"
HAPROXY_PID=$LAST_PID
start_haproxy haproxy-http "$OUT/conf/haproxy-http.cfg" "$BENCH_PROXY_CPU" "$BENCH_NET.63"
PROXY_PID[haproxy-http]=$LAST_PID
start_nginx_grpc
PROXY_PID[nginx-grpc]=$LAST_PID
PROXY_PID[direct]=-
PROXY_PID[haproxy]=$HAPROXY_PID

UNTRACKED=0
if has_no_h2_drain_flag; then UNTRACKED=1; fi
meta untracked_flag "$UNTRACKED"
# --workers BENCH_WORKERS in every phase but the workers phase, when the flag exists.
WORKERS_FLAG=0
KLP_FLAGS=()
if has_workers_flag; then
  WORKERS_FLAG=1
  KLP_FLAGS=(--workers "$BENCH_WORKERS")
else
  log "run --help lists no --workers: the proxy runs as it is, and the workers phase is skipped"
fi
meta workers_flag "$WORKERS_FLAG"

# ---- bulk throughput ----
phase_bulk() {
  RETRIES_LEFT=$BENCH_RETRY_BUDGET
  log "phase 3/6: bulk throughput (iperf3, ${BENCH_IPERF_SECONDS}s per run)"
  start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.50" "${KLP_FLAGS[@]}"
  PROXY_PID[klp]=$LAST_PID
  set_targets "$BENCH_NET.10:15201" "$BENCH_NET.50" "$BENCH_NET.60"
  for c in klp haproxy; do
    warmup $LOADP iperf3 -c "${TARGET[$c]%:*}" -p 8080 -t 2 -P 4
    sleep 1
  done
  run_suite bulk1 1 direct klp haproxy
  run_suite bulk4 1 direct klp haproxy
  record_rss bulk klp "${PROXY_PID[klp]}"
  stop_pid "${PROXY_PID[klp]}"
}

# ---- new-connection rate ----
phase_connrate() {
  RETRIES_LEFT=$BENCH_RETRY_BUDGET
  log "phase 4/6: new-connection rate (wrk, Connection: close, ${BENCH_WRK_SECONDS}s per run)"
  start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.51" "${KLP_FLAGS[@]}"
  PROXY_PID[klp]=$LAST_PID
  set_targets "$BENCH_NET.11:18080" "$BENCH_NET.51" "$BENCH_NET.61"
  for c in klp haproxy; do
    warmup $LOADP wrk -t1 -c"$BENCH_WRK_CONNECTIONS" -d2s -H 'Connection: close' "http://${TARGET[$c]}/"
  done
  sleep 2
  run_suite connrate 2 direct klp haproxy
  record_rss connrate klp "${PROXY_PID[klp]}"
  stop_pid "${PROXY_PID[klp]}"
}

# ---- HTTP/2 ----
phase_h2() {
  RETRIES_LEFT=$BENCH_RETRY_BUDGET
  log "phase 5/6: HTTP/2 (h2load, ${BENCH_H2_SECONDS}s per run)"
  start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.52" "${KLP_FLAGS[@]}"
  PROXY_PID[klp]=$LAST_PID
  set_targets "$BENCH_NET.12:18443" "$BENCH_NET.52" "$BENCH_NET.62" "$BENCH_NET.53"
  h2cases=(direct klp haproxy haproxy-http nginx-grpc)
  if [[ $UNTRACKED == 1 ]]; then
    start_klp klp-untracked "$OUT/manifests/untracked.yaml" "$METRICS_PORT_UNTRACKED" \
      "$BENCH_NET.53" --no-h2-drain "${KLP_FLAGS[@]}"
    PROXY_PID[klp-untracked]=$LAST_PID
    h2cases=(direct klp klp-untracked haproxy haproxy-http nginx-grpc)
  else
    log "run --help lists no --no-h2-drain: the untracked case is not measured"
  fi
  for c in "${h2cases[@]:1}"; do
    warmup $LOADP h2load -c 10 -m 10 -D 2 "http://${TARGET[$c]}/"
  done
  run_suite h2 1 "${h2cases[@]}"
  scrape "$METRICS_PORT_TRACKED" >"$OUT/metrics-h2-klp.txt" || true
  record_rss h2 klp "${PROXY_PID[klp]}"
  if [[ $UNTRACKED == 1 ]]; then
    scrape "$METRICS_PORT_UNTRACKED" >"$OUT/metrics-h2-klp-untracked.txt" || true
    record_rss h2 klp-untracked "${PROXY_PID[klp-untracked]}"
    stop_pid "${PROXY_PID[klp-untracked]}"
  fi
  stop_pid "${PROXY_PID[klp]}"
}

# want PHASE: whether BENCH_PHASES (default: all) names PHASE.
want() { [[ " ${BENCH_PHASES:-memory latency bulk connrate h2 workers} " == *" $1 "* ]]; }
for phase in memory latency bulk connrate h2 workers; do
  if want "$phase"; then "phase_$phase"; else log "phase $phase: skipped (BENCH_PHASES)"; fi
done
meta phases "${BENCH_PHASES:-all}"
record_rss all haproxy "$HAPROXY_PID"
record_rss all haproxy-http "${PROXY_PID[haproxy-http]}"
record_rss all nginx-grpc "${PROXY_PID[nginx-grpc]}"

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta duration_s "$(($(date +%s) - STARTED))"
meta retries "$RETRIES"
meta foreign_max "$BENCH_FOREIGN_MAX"
meta retry_budget "$BENCH_RETRY_BUDGET"
meta retry_until "$BENCH_RETRY_UNTIL"
cleanup
"$NODE" bench/results.ts
"$NODE" bench/report.ts
log "done in $(($(date +%s) - STARTED)) s; wrote docs/benchmarks.md"
