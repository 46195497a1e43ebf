#!/usr/bin/env bash
# Records `kube-lc-proxy demo --single-node` (one proxy, every client on its node) twice, with
# drains and with --no-drain, and plots both runs into one SVG (docs/convergence.svg by default).
#
#   scripts/convergence.sh [OUT.svg] [demo flags...]
#   scripts/convergence.sh docs/convergence.svg --duration 60s --clients 100
#
# Each run takes as long as its --duration (50 s by default) and binds 127.0.100.0/24 (Linux):
# the two runs go one after the other, and nothing else may use that range meanwhile (the
# grpc demo test does). The reports of both runs are printed on stderr. Set KEEP_RECORDINGS=DIR
# to keep the two JSON recordings (drain.json, no-drain.json) there.
set -euo pipefail

cd "$(dirname "$0")/.."
out=${1:-docs/convergence.svg}
[[ $# -gt 0 ]] && shift
node=node_modules/.bin/node
[[ -x $node ]] || node=node

# The demo runs the built CLI: build it from the current sources.
"$node" node_modules/typescript/bin/tsc -p tsconfig.build.json

if command -v ss >/dev/null && ss -Hltn 2>/dev/null | grep -q ' 127\.0\.100\.'; then
  echo "convergence.sh: something already listens on 127.0.100.0/24 (another demo?); not starting" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for mode in drain no-drain; do
  flags=()
  [[ $mode == no-drain ]] && flags=(--no-drain)
  echo "convergence.sh: demo --single-node ${flags[*]:-with drains} $*" >&2
  if ! "$node" bin/kube-lc-proxy.js demo --single-node "${flags[@]}" "$@" --record "$tmp/$mode.json" \
    >"$tmp/$mode.log" 2>&1; then
    tail -n 20 "$tmp/$mode.log" >&2
    exit 1
  fi
  # The report: everything from its title line on.
  sed -n '/^kube-lc-proxy demo report/,$p' "$tmp/$mode.log" >&2
done

"$node" scripts/plot-convergence.ts "$tmp/drain.json" "$tmp/no-drain.json" "$out"
if [[ -n ${KEEP_RECORDINGS:-} ]]; then
  mkdir -p "$KEEP_RECORDINGS"
  cp "$tmp/drain.json" "$tmp/no-drain.json" "$KEEP_RECORDINGS/"
fi
