# Shared by bench/run.sh and bench/profile.sh: settings, dependencies, the processes under test
# and their cleanup. Source it from the repository root; it changes nothing until a function runs.
#
# Every process started here goes through start_bg, which records its pid; cleanup (installed as
# the EXIT/INT/TERM trap by bench_init) stops exactly those pids, children first, TERM then KILL.
# Load generators run in the background and are waited for, so Ctrl-C is handled at once rather
# than after the current 10 s run.

# ---- settings (environment overrides) -------------------------------------------------------
# The bench uses addresses @NET@.x only: backends .10-.13, kube-lc-proxy .50-.57 (the workers
# phase .80-.87), HAProxy TCP .60-.62 and .65 (the workers phase .70-.77), HAProxy HTTP .63,
# nginx grpc_pass .64, metrics on .1. Pick another 127.x.y prefix if this one is taken.
BENCH_NET=${BENCH_NET:-127.0.88}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_IPERF_SECONDS=${BENCH_IPERF_SECONDS:-10}
BENCH_WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
BENCH_WRK_CONNECTIONS=${BENCH_WRK_CONNECTIONS:-50}
BENCH_H2_SECONDS=${BENCH_H2_SECONDS:-5}
# CPU for the load generators and backends, and CPU for the proxy under test; BENCH_PIN=0 runs
# everything unpinned.
BENCH_PIN=${BENCH_PIN:-1}
BENCH_LOAD_CPU=${BENCH_LOAD_CPU:-0}
BENCH_PROXY_CPU=${BENCH_PROXY_CPU:-1}
# A run during which other processes used more than BENCH_FOREIGN_MAX % of one core is run again
# once (the less disturbed of the two is kept), up to BENCH_RETRY_BUDGET times per phase and only
# in the first BENCH_RETRY_UNTIL seconds (the machine may be shared; this keeps the whole bench
# under 15 minutes).
BENCH_FOREIGN_MAX=${BENCH_FOREIGN_MAX:-10}
BENCH_RETRY_BUDGET=${BENCH_RETRY_BUDGET:-6}
BENCH_RETRY_UNTIL=${BENCH_RETRY_UNTIL:-700}
# Rebuild dist/ when a source file is newer than it (dist/ missing is always built).
BENCH_REBUILD=${BENCH_REBUILD:-1}
# kube-lc-proxy's --workers in every phase but the workers phase (passed only when `run --help`
# lists the flag), against HAProxy's nbthread 1.
BENCH_WORKERS=${BENCH_WORKERS:-1}
# Latency phase: h2load at a fixed rate, BENCH_LAT_CLIENTS connections of BENCH_LAT_RPS requests
# per second each, BENCH_LAT_SECONDS per run (after 1 s of unrecorded warm-up), BENCH_LAT_REPS
# rounds over the five paths.
BENCH_LAT_CLIENTS=${BENCH_LAT_CLIENTS:-4}
BENCH_LAT_RPS=${BENCH_LAT_RPS:-500}
BENCH_LAT_SECONDS=${BENCH_LAT_SECONDS:-12}
BENCH_LAT_REPS=${BENCH_LAT_REPS:-2}
# Memory phase: idle HTTP/2 connections held open through each TCP proxy.
BENCH_IDLE_CONNS=${BENCH_IDLE_CONNS:-5000}
# Workers phase: --workers 1 and 2 against nbthread 1 and 2, the proxy and the load generators
# all allowed on BENCH_WORKERS_CPUS; BENCH_WORKERS_REPS rounds of BENCH_WORKERS_SECONDS runs.
BENCH_WORKERS_CPUS=${BENCH_WORKERS_CPUS:-0,1}
BENCH_WORKERS_REPS=${BENCH_WORKERS_REPS:-2}
BENCH_WORKERS_SECONDS=${BENCH_WORKERS_SECONDS:-5}

# Where configs, logs and raw outputs go (bench/profile.sh uses its own).
OUT=${BENCH_OUT:-bench/out}
NODE=node_modules/.bin/node
# The proxy runs from a snapshot of bin/, dist/ and package.json taken at start, with a link to
# node_modules/ (snapshot_build), so a rebuild of dist/ while the bench runs cannot change the
# code between runs. It lives outside the repository so that linters never see it.
SNAPSHOT=
KLP_BIN='$SNAPSHOT/bin/kube-lc-proxy.js' # set by snapshot_build
METRICS_PORT_TRACKED=19911
METRICS_PORT_UNTRACKED=19912
METRICS_PORT_WORKERS=19913 # and 19914

PIDS=()
declare -A PID_NAME=()
LAST_PID=
CLEANED=0

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---- processes ------------------------------------------------------------------------------

# pin CPU CMD...: prints the command prefix that pins to CPU (nothing when pinning is off).
pin() {
  if [[ $BENCH_PIN == 1 ]]; then printf 'taskset -c %s ' "$1"; fi
}

# start_bg NAME LOGFILE CMD...: starts CMD in the background, records its pid in LAST_PID.
start_bg() {
  local name=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  PID_NAME[$LAST_PID]=$name
}

# Pids of the direct children of PID (nginx workers, the command under timeout).
children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }

# stop_pid PID: TERM, up to 3 s, then KILL; children too. Forgets the pid.
stop_pid() {
  local pid=$1 kids k i
  if kill -0 "$pid" 2>/dev/null; then
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
  fi
  wait "$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

cleanup() {
  [[ $CLEANED == 1 ]] && return
  CLEANED=1
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    local pid=${PIDS[i]}
    kill -0 "$pid" 2>/dev/null && log "stopping ${PID_NAME[$pid]:-process} (pid $pid)"
    stop_pid "$pid"
  done
  if [[ -n $SNAPSHOT && -d $SNAPSHOT ]]; then rm -rf "$SNAPSHOT"; fi
}

bench_init() {
  if [[ $BENCH_PIN == 1 ]] && (($(nproc) < 2)); then
    log "one CPU only: running unpinned"
    BENCH_PIN=0
  fi
  trap cleanup EXIT
  trap 'log "interrupted"; cleanup; exit 130' INT
  trap 'log "terminated"; cleanup; exit 143' TERM
  mkdir -p "$OUT"/{conf,logs,raw,manifests,www,nginx,nginx-grpc}
}

# run_load NAME OUTFILE TIMEOUT_S CMD...: runs a load generator to completion (bounded by
# TIMEOUT_S), output in OUTFILE. Returns its exit status.
run_load() {
  local name=$1 outfile=$2 limit=$3 rc=0
  shift 3
  start_bg "$name" "$outfile" timeout -k 5 "$limit" "$@"
  local pid=$LAST_PID
  wait "$pid" || rc=$?
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
  return "$rc"
}

# wait_tcp HOST PORT SECONDS: waits until something accepts on HOST:PORT.
wait_tcp() {
  local host=$1 port=$2 limit=$3 i
  for ((i = 0; i < limit * 10; i++)); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# CPU time (user + system, all threads) of PID in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
    echo 0
    return
  }
  # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
  awk '{print $12 + $13}' <<<"${stat##*) }"
}
# Peak resident set size (VmHWM) of PID, in KiB.
peak_rss_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Resident set size now (VmRSS) of PID, in KiB.
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# CPU time (clock ticks, reaped children included) of every process outside the bench's own
# process tree and outside the kernel's threads: other work competing with the bench. Kernel
# threads (ksoftirqd...) are left out because the bench's own traffic keeps them busy.
foreign_ticks() {
  # One line per process; a process may exit between the glob and the read.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v me="$$" '
    { line = $0; pid = $1; sub(/^.*\) /, "", line); split(line, f, " ")
      ppid[pid] = f[2]; t[pid] = f[12] + f[13] + f[14] + f[15] }
    END { for (p in t) {
        if (p == 2 || ppid[p] == 2) continue
        q = p; ours = 0
        for (i = 0; i < 64 && q > 1; i++) { if (q == me) { ours = 1; break }; q = ppid[q] }
        if (!ours) sum += t[p]
      }
      print sum + 0 }'
}

# Share of all CPUs busy over SECONDS (default 2), in %: other work on the machine skews results.
machine_busy() {
  local a b
  a=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  sleep "${1:-2}"
  b=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
    printf "%.0f", (y[2] > x[2]) ? 100 * (y[1] - x[1]) / (y[2] - x[2]) : 0 }'
}

# wait_quiet: waits up to BENCH_QUIET_WAIT seconds for the machine to be nearly idle (at most
# BENCH_QUIET_BUSY % busy); prints the last measured share.
wait_quiet() {
  local busy waited=0
  while :; do
    busy=$(machine_busy 2)
    waited=$((waited + 2))
    if ((busy <= ${BENCH_QUIET_BUSY:-10} || waited >= ${BENCH_QUIET_WAIT:-60})); then break; fi
    log "machine is ${busy}% busy with other work; waiting for it to calm down" >&2
  done
  echo "$busy"
}

# shell_words WORD...: the words as one shell command line, quoted where needed.
shell_words() {
  local out=() w
  for w in "$@"; do
    if [[ $w =~ ^[\$A-Za-z0-9_./:=@%+,-]+$ ]]; then out+=("$w"); else out+=("'${w//\'/\'\\\'\'}'"); fi
  done
  printf '%s' "${out[*]}"
}

# record_cmd LABEL CMD...: notes the exact command of a case once, for the report.
record_cmd() {
  local label=$1
  shift
  grep -q "^$label	" "$OUT/commands.tsv" 2>/dev/null && return
  printf '%s\t%s\n' "$label" "$(shell_words "$@")" >>"$OUT/commands.tsv"
}

# ---- dependencies and build -----------------------------------------------------------------

ensure_deps() {
  local -A need=(
    [haproxy]=haproxy [nginx]=nginx-light [iperf3]=iperf3 [wrk]=wrk
    [h2load]=nghttp2-client [nghttpd]=nghttp2-server [taskset]=util-linux [ps]=procps
    [timeout]=coreutils [ss]=iproute2
  )
  local missing=() bin
  for bin in "${!need[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing from Debian: ${missing[*]}"
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}; run as root or install them"
    sudo=(sudo)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

ensure_build() {
  if [[ ! -x $NODE ]]; then
    command -v npm >/dev/null 2>&1 || die "node_modules/ is missing and npm is not installed"
    log "installing node_modules (npm ci)"
    npm ci --no-audit --no-fund
  fi
  # --noEmitOnError: sources that do not compile leave the existing dist/ as it was.
  local tsc=("$NODE" node_modules/typescript/bin/tsc -p tsconfig.build.json --noEmitOnError)
  if [[ ! -f dist/cli/index.js ]]; then
    log "building dist/"
    "${tsc[@]}" || die "build failed"
  elif [[ $BENCH_REBUILD == 1 && -n $(find src -name '*.ts' -newer dist/cli/index.js -print -quit) ]]; then
    log "src/ is newer than dist/: rebuilding"
    if ! "${tsc[@]}" >"$OUT/logs/build.log" 2>&1; then
      log "warning: rebuild failed (see $OUT/logs/build.log); measuring the existing dist/"
      echo "rebuild-failed" >"$OUT/build-status"
      return
    fi
  fi
  echo "ok" >"$OUT/build-status"
}

snapshot_build() {
  SNAPSHOT=$(mktemp -d "${TMPDIR:-/tmp}/kube-lc-proxy-bench.XXXXXX")
  cp -r bin dist package.json "$SNAPSHOT/"
  ln -s "$PWD/node_modules" "$SNAPSHOT/node_modules"
  KLP_BIN=$SNAPSHOT/bin/kube-lc-proxy.js
}

# True when `run --help` lists the flag that turns HTTP/2 tracking off.
has_no_h2_drain_flag() {
  "$NODE" "$KLP_BIN" run --help 2>/dev/null | grep -Eq -- '--(no-)?h2-drain([^-]|$)'
}

# True when `run --help` lists --workers (the data path on worker threads).
has_workers_flag() {
  "$NODE" "$KLP_BIN" run --help 2>/dev/null | grep -Eq -- '--workers([^-]|$)'
}

# ---- configs and processes under test -------------------------------------------------------

# render TEMPLATE OUTFILE [KEY=VALUE...]: drops the template's leading comment block and
# substitutes @NET@ and the given @KEY@s.
render() {
  local template=$1 outfile=$2 kv args=(-e '1,/^[^#]/{/^#/d}' -e "s/@NET@/$BENCH_NET/g")
  shift 2
  for kv in "$@"; do args+=(-e "s/@${kv%%=*}@/${kv#*=}/g"); done
  sed "${args[@]}" "$template" >"$outfile"
}

render_configs() {
  # HAProxy needs about two descriptors per connection and refuses to start when the hard
  # limit is lower than maxconn asks for: take the most the limit allows, up to 100000.
  local hard maxconn=100000
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && (((hard - 1000) / 2 < maxconn)); then
    maxconn=$(((hard - 1000) / 2))
  fi
  render bench/conf/haproxy.cfg.in "$OUT/conf/haproxy.cfg" "MAXCONN=$maxconn" NBTHREAD=1 \
    IP_BULK=60 IP_HTTP=61 IP_H2=62 IP_IDLE=65
  local n
  for n in 1 2; do
    render bench/conf/haproxy.cfg.in "$OUT/conf/haproxy-nbthread$n.cfg" "MAXCONN=$maxconn" \
      NBTHREAD=$n IP_BULK=$((66 + 4 * n)) IP_HTTP=$((67 + 4 * n)) IP_H2=$((68 + 4 * n)) \
      IP_IDLE=$((69 + 4 * n))
    render bench/conf/manifests.yaml.in "$OUT/manifests/workers$n.yaml" \
      SUFFIX= IP_BULK=$((76 + 4 * n)) IP_HTTP=$((77 + 4 * n)) IP_H2=$((78 + 4 * n)) \
      IP_IDLE=$((79 + 4 * n))
  done
  render bench/conf/haproxy-http.cfg.in "$OUT/conf/haproxy-http.cfg"
  render bench/conf/nginx.conf.in "$OUT/nginx/nginx.conf"
  render bench/conf/nginx-grpc.conf.in "$OUT/nginx-grpc/nginx.conf"
  render bench/conf/manifests.yaml.in "$OUT/manifests/tracked.yaml" \
    SUFFIX= IP_BULK=50 IP_HTTP=51 IP_H2=52 IP_IDLE=56
  render bench/conf/manifests.yaml.in "$OUT/manifests/untracked.yaml" \
    SUFFIX=-untracked IP_BULK=54 IP_HTTP=55 IP_H2=53 IP_IDLE=57

  printf 'hello from the bench backend\n' >"$OUT/www/index.html"
}

check_addresses_free() {
  local busy
  busy=$(ss -Htln 2>/dev/null | awk '{print $4}' | grep -F "$BENCH_NET." || true)
  [[ -z $busy ]] || die "addresses in use under $BENCH_NET.*: $busy (set BENCH_NET to another 127.x.y)"
}

start_backends() {
  local p
  p=$(pin "$BENCH_LOAD_CPU")
  record_cmd backend-iperf3 $p iperf3 -s -B "$BENCH_NET.10" -p 15201
  start_bg iperf3-server "$OUT/logs/iperf3-server.log" $p iperf3 -s -B "$BENCH_NET.10" -p 15201
  record_cmd backend-nginx $p nginx -p "$OUT/nginx/" -c nginx.conf
  start_bg nginx "$OUT/logs/nginx.log" $p nginx -p "$OUT/nginx/" -c nginx.conf
  record_cmd backend-nghttpd $p nghttpd --no-tls -a "$BENCH_NET.12" -d "$OUT/www" 18443
  start_bg nghttpd "$OUT/logs/nghttpd.log" $p nghttpd --no-tls -a "$BENCH_NET.12" -d "$OUT/www" 18443
  record_cmd backend-idle $p "$NODE" bench/idle-conns.ts server "$BENCH_NET.13" 18500
  start_bg idle-server "$OUT/logs/idle-server.log" $p "$NODE" bench/idle-conns.ts server \
    "$BENCH_NET.13" 18500
  wait_tcp "$BENCH_NET.10" 15201 10 || die "iperf3 server did not start"
  wait_tcp "$BENCH_NET.11" 18080 10 || die "nginx did not start (see $OUT/nginx/error.log)"
  wait_tcp "$BENCH_NET.12" 18443 10 || die "nghttpd did not start"
  wait_tcp "$BENCH_NET.13" 18500 10 || die "the idle backend did not start"
}

# start_haproxy NAME CONFIG CPUS WAIT_IP: one HAProxy; pid in LAST_PID.
start_haproxy() {
  local name=$1 conf=$2 p
  p=$(pin "$3")
  haproxy -c -q -f "$conf" || die "bad HAProxy config $conf"
  record_cmd "proxy-$name" $p haproxy -db -f "$conf"
  start_bg "$name" "$OUT/logs/$name.log" $p haproxy -db -f "$conf"
  local pid=$LAST_PID
  wait_tcp "$4" 8080 10 || die "$name did not start (see $OUT/logs/$name.log)"
  LAST_PID=$pid
}

# start_nginx_grpc: nginx with grpc_pass, one process, on the proxy CPU; pid in LAST_PID.
start_nginx_grpc() {
  local p
  p=$(pin "$BENCH_PROXY_CPU")
  record_cmd proxy-nginx-grpc $p nginx -p "$OUT/nginx-grpc/" -c nginx.conf
  start_bg nginx-grpc "$OUT/logs/nginx-grpc.log" $p nginx -p "$OUT/nginx-grpc/" -c nginx.conf
  local pid=$LAST_PID
  wait_tcp "$BENCH_NET.64" 8080 10 || die "nginx grpc_pass did not start (see $OUT/nginx-grpc/error.log)"
  LAST_PID=$pid
}

# The glibc malloc settings and the V8 flag the image sets (Dockerfile ENV): the proxy runs as deployed. Without
# them every 64 KiB read buffer Node allocates lands on fresh heap pages that glibc has just
# trimmed, and bulk throughput drops by about a third (docs/operations.md, "Memory allocator").
KLP_ENV=(MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=67108864 MALLOC_TOP_PAD_=16777216 NODE_OPTIONS=--max-semi-space-size=1)

# start_klp NAME MANIFEST METRICS_PORT WAIT_IP [FLAG...]: one kube-lc-proxy; pid in LAST_PID.
# Extra node options (e.g. --cpu-prof) come from KLP_NODE_OPTS; the CPUs from KLP_CPUS (default
# the proxy CPU).
start_klp() {
  local name=$1 manifest=$2 mport=$3 wait_ip=$4 p
  shift 4
  p=$(pin "${KLP_CPUS:-$BENCH_PROXY_CPU}")
  local cmd=(env "${KLP_ENV[@]}" $p "$NODE" ${KLP_NODE_OPTS:-} "$KLP_BIN" run --source "file:$manifest" --intercept none
    --metrics-address "$BENCH_NET.1:$mport" --log-level warn --shutdown-grace 2s "$@")
  record_cmd "proxy-$name" "${cmd[@]//"$SNAPSHOT"/\$SNAPSHOT}"
  start_bg "$name" "$OUT/logs/$name.log" "${cmd[@]}"
  local pid=$LAST_PID
  wait_tcp "$wait_ip" 8080 20 || die "$name did not start (see $OUT/logs/$name.log)"
  LAST_PID=$pid
}

# scrape PORT: the proxy's /metrics text.
scrape() {
  "$NODE" -e 'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t),
    () => process.exit(1))' "http://$BENCH_NET.1:$1/metrics"
}
