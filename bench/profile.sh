#!/usr/bin/env bash
# CPU profile of kube-lc-proxy under the new-connection load of the benchmark (wrk with
# Connection: close against nginx, same pinning as bench/run.sh), then a summary of where the
# time goes. Not part of `npm run bench`: the profiler itself slows the proxy down.
#
#   bench/profile.sh            # profile in bench/out/profile/, summary on stdout
#   BENCH_PROFILE_LOAD=h2 bench/profile.sh     # h2load through the proxy instead
#   BENCH_PROFILE_LOAD=bulk bench/profile.sh   # iperf3, one stream
#   bench/profile.sh syscalls   # system calls per connection, kube-lc-proxy vs HAProxy (strace -c)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_OUT=bench/out/profile
# shellcheck source=bench/lib.sh
source bench/lib.sh

BENCH_PROFILE_LOAD=${BENCH_PROFILE_LOAD:-connrate}
BENCH_PROFILE_INTERVAL_US=${BENCH_PROFILE_INTERVAL_US:-250}
rm -rf "$OUT"
bench_init
ensure_deps
ensure_build
snapshot_build
check_addresses_free
render_configs
start_backends

# syscalls_per_connection NAME PID: strace -c on PID (every thread) during a 5 s wrk run through
# the proxy at HOST, then the system calls per proxied connection.
syscalls_per_connection() {
  local name=$1 pid=$2 host=$3 st requests
  command -v strace >/dev/null 2>&1 || die "strace is not installed"
  start_bg "strace-$name" "$OUT/strace-$name.log" \
    strace -c -f -q -o "$OUT/strace-$name.txt" -p "$pid"
  st=$LAST_PID
  sleep 1
  run_load wrk "$OUT/wrk-$name.txt" 60 $LOADP wrk -t1 -c"$BENCH_WRK_CONNECTIONS" -d5s \
    -H 'Connection: close' "http://$host:8080/" || log "warning: wrk failed"
  stop_pid "$st"
  requests=$(awk '/requests in/{print $1}' "$OUT/wrk-$name.txt")
  echo "== $name: $requests connections (under strace; the rate itself means nothing here)"
  awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && NF >= 5 { calls = $4; name = $NF;
      printf "  %8.2f per connection  %s\n", calls / n, name }' "$OUT/strace-$name.txt" |
    sort -rn | head -20
}

LOADP=$(pin "$BENCH_LOAD_CPU")
if [[ ${1:-cpu} == syscalls ]]; then
  start_haproxy haproxy "$OUT/conf/haproxy.cfg" "$BENCH_PROXY_CPU" "$BENCH_NET.60"
  HAPROXY_PID=$LAST_PID
  start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.51"
  syscalls_per_connection kube-lc-proxy "$LAST_PID" "$BENCH_NET.51"
  syscalls_per_connection haproxy "$HAPROXY_PID" "$BENCH_NET.61"
  exit 0
fi

KLP_NODE_OPTS="--cpu-prof --cpu-prof-dir=$OUT --cpu-prof-interval=$BENCH_PROFILE_INTERVAL_US"
start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.51"
KLP_PID=$LAST_PID
if [[ $BENCH_PROFILE_LOAD == bulk ]]; then
  load=($LOADP iperf3 -c "$BENCH_NET.50" -p 8080 -t "$BENCH_IPERF_SECONDS" -P 1)
elif [[ $BENCH_PROFILE_LOAD == h2 ]]; then
  load=($LOADP h2load -c 10 -m 10 -D "$BENCH_H2_SECONDS" "http://$BENCH_NET.52:8080/")
else
  load=($LOADP wrk -t1 -c"$BENCH_WRK_CONNECTIONS" -d"${BENCH_WRK_SECONDS}s" -H 'Connection: close'
    "http://$BENCH_NET.51:8080/")
fi
log "profiling kube-lc-proxy under: ${load[*]}"
run_load load "$OUT/load.txt" 120 "${load[@]}" || log "warning: load generator failed"
cat "$OUT/load.txt"

# The profile is written when the process exits normally: SIGTERM, then give it time.
kill -TERM "$KLP_PID"
for ((i = 0; i < 150; i++)); do
  kill -0 "$KLP_PID" 2>/dev/null || break
  sleep 0.1
done
stop_pid "$KLP_PID"
prof=$(ls -t "$OUT"/*.cpuprofile 2>/dev/null | head -1)
[[ -n $prof ]] || die "no .cpuprofile was written"
"$NODE" bench/cpuprofile-summary.ts "$prof" "${BENCH_PROFILE_TOP:-25}"
