# The phases of bench/run.sh that issue 11 added: memory (at rest and per idle connection),
# latency added to a fixed-rate HTTP/2 load, and --workers against HAProxy's nbthread. Sourced by
# bench/run.sh after its helpers (measure, run_suite, the TARGET and PROXY_PID tables); each
# phase leaves the processes it started stopped.

# ---- memory -----------------------------------------------------------------------------------

# idle_rss NAME PID HOST: RSS of PID at rest, then with BENCH_IDLE_CONNS idle HTTP/2 connections
# open through it to HOST:8080; one line of idle.tsv: name, RSS at rest and with the connections
# open (KiB), connections opened, failed, and the proxy's open descriptors.
idle_rss() {
  local name=$1 pid=$2 host=$3 rest open fds line cpid i
  rest=$(rss_kib "$pid")
  local out="$OUT/raw/idle-$name.txt"
  record_cmd "idle-$name" $LOADP "$NODE" bench/idle-conns.ts client "$host" 8080 \
    "$BENCH_IDLE_CONNS" 120
  start_bg "idle-client-$name" "$out" $LOADP "$NODE" bench/idle-conns.ts client "$host" 8080 \
    "$BENCH_IDLE_CONNS" 120
  cpid=$LAST_PID
  for ((i = 0; i < 900; i++)); do
    grep -q '^open ' "$out" 2>/dev/null && break
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  # Settle: let the proxy finish the work of the last connections (and a GC run or two).
  sleep 3
  open=$(rss_kib "$pid")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  line=$(grep -m1 '^open ' "$out" || echo 'open 0 failed 0')
  stop_pid "$cpid"
  read -r _ opened _ failed <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rest" "$open" "$opened" "$failed" "$fds" \
    >>"$OUT/idle.tsv"
  log "$name: RSS at rest $((rest / 1024)) MiB, with $opened idle connections $((open / 1024)) MiB ($failed failed)"
  sleep 2
}

# rest_rss NAME PID: a proxy's RSS at rest only (the L7 proxies, not measured with idle
# connections: the goals compare the TCP proxies).
rest_rss() {
  printf '%s\t%s\t\t\t\t\n' "$1" "$(rss_kib "$2")" >>"$OUT/idle.tsv"
}

phase_memory() {
  log "phase 1/6: memory at rest, and with $BENCH_IDLE_CONNS idle HTTP/2 connections"
  touch "$OUT/idle.tsv"
  start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.56" \
    "${KLP_FLAGS[@]}"
  PROXY_PID[klp]=$LAST_PID
  # At rest: started, listening, no traffic yet (the other proxies have been up as long).
  sleep 5
  rest_rss haproxy-http "${PROXY_PID[haproxy-http]}"
  rest_rss nginx-grpc "${PROXY_PID[nginx-grpc]}"
  idle_rss klp "${PROXY_PID[klp]}" "$BENCH_NET.56"
  idle_rss haproxy "${PROXY_PID[haproxy]}" "$BENCH_NET.65"
  stop_pid "${PROXY_PID[klp]}"
}

# ---- latency at a fixed rate ------------------------------------------------------------------

case_lat() {
  local case=$1 rep=$2
  measure lat "$case" "$rep" "${PROXY_PID[$case]}" \
    $LOADP h2load -c "$BENCH_LAT_CLIENTS" -m 10 --rps "$BENCH_LAT_RPS" -D "$BENCH_LAT_SECONDS" \
    --warm-up-time=1 --log-file=@LOG@ "http://${TARGET[$case]}/"
}

phase_latency() {
  # Every run of this phase may be run once more if other work disturbed it (see measure).
  RETRIES_LEFT=$((BENCH_LAT_REPS * 5))
  # Tail latency is what other work on the machine disturbs most: wait once more (briefly).
  meta busy_before_latency "$(BENCH_QUIET_WAIT=30 wait_quiet)"
  log "phase 2/6: latency at $((BENCH_LAT_CLIENTS * BENCH_LAT_RPS)) HTTP/2 requests/s (h2load --rps, ${BENCH_LAT_SECONDS}s per run)"
  start_klp klp "$OUT/manifests/tracked.yaml" "$METRICS_PORT_TRACKED" "$BENCH_NET.52" \
    "${KLP_FLAGS[@]}"
  PROXY_PID[klp]=$LAST_PID
  set_targets "$BENCH_NET.12:18443" "$BENCH_NET.52" "$BENCH_NET.62"
  local c
  for c in klp haproxy haproxy-http nginx-grpc; do
    warmup $LOADP h2load -c "$BENCH_LAT_CLIENTS" -m 10 -D 2 "http://${TARGET[$c]}/"
  done
  sleep 1
  local saved=$BENCH_REPS
  BENCH_REPS=$BENCH_LAT_REPS
  run_suite lat 1 direct klp haproxy haproxy-http nginx-grpc
  BENCH_REPS=$saved
  stop_pid "${PROXY_PID[klp]}"
}

# ---- --workers against nbthread ---------------------------------------------------------------

case_wconnrate() {
  local case=$1 rep=$2
  measure wconnrate "$case" "$rep" "${PROXY_PID[$case]}" \
    $LOADW wrk -t2 -c100 -d"${BENCH_WORKERS_SECONDS}s" -H 'Connection: close' \
    "http://${WTARGET[$case]%:*}:8080/"
}

case_wh2() {
  local case=$1 rep=$2
  measure wh2 "$case" "$rep" "${PROXY_PID[$case]}" \
    $LOADW h2load -t2 -c 20 -m 10 -D "$BENCH_WORKERS_SECONDS" "http://${WTARGET[$case]#*:}:8080/"
}

# WTARGET[case] is "HTTP_IP:H2_IP" of that case's proxy.
declare -A WTARGET
phase_workers() {
  if [[ $WORKERS_FLAG != 1 ]]; then
    log "phase 6/6: skipped: run --help lists no --workers"
    return
  fi
  RETRIES_LEFT=$BENCH_RETRY_BUDGET
  log "phase 6/6: --workers 1 and 2 against nbthread 1 and 2, all on CPUs $BENCH_WORKERS_CPUS"
  LOADW=$(pin "$BENCH_WORKERS_CPUS")
  local n
  for n in 1 2; do
    KLP_CPUS=$BENCH_WORKERS_CPUS start_klp "klp-w$n" "$OUT/manifests/workers$n.yaml" \
      "$((METRICS_PORT_WORKERS + n - 1))" "$BENCH_NET.$((78 + 4 * n))" --workers "$n"
    PROXY_PID[klp-w$n]=$LAST_PID
    WTARGET[klp-w$n]=$BENCH_NET.$((77 + 4 * n)):$BENCH_NET.$((78 + 4 * n))
    start_haproxy "haproxy-nb$n" "$OUT/conf/haproxy-nbthread$n.cfg" "$BENCH_WORKERS_CPUS" \
      "$BENCH_NET.$((68 + 4 * n))"
    PROXY_PID[haproxy-nb$n]=$LAST_PID
    WTARGET[haproxy-nb$n]=$BENCH_NET.$((67 + 4 * n)):$BENCH_NET.$((68 + 4 * n))
  done
  local c cases=(klp-w1 klp-w2 haproxy-nb1 haproxy-nb2)
  for c in "${cases[@]}"; do
    warmup $LOADW h2load -t2 -c 20 -m 10 -D 2 "http://${WTARGET[$c]#*:}:8080/"
  done
  local saved=$BENCH_REPS
  BENCH_REPS=$BENCH_WORKERS_REPS
  run_suite wconnrate 2 "${cases[@]}"
  run_suite wh2 1 "${cases[@]}"
  BENCH_REPS=$saved
  for c in "${cases[@]}"; do record_rss workers "$c" "${PROXY_PID[$c]}"; done
  for c in "${cases[@]}"; do stop_pid "${PROXY_PID[$c]}"; done
}
