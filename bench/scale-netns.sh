#!/usr/bin/env bash
# The scale bench with --intercept iptables, as in a cluster: runs bench/scale.ts inside a fresh
# network namespace (its own loopback and nat table), then deletes the namespace. Root only.
#
#   bench/scale-netns.sh [SIZES...]      # default 1000 5000 10000; then bench/scale.ts --render
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || {
  echo "scale-netns: needs root (network namespace, iptables)" >&2
  exit 1
}
NS=klp-scale-$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" env SCALE_INTERCEPT=iptables node_modules/.bin/node bench/scale.ts "$@"
