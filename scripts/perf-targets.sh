#!/usr/bin/env bash
# Issue 22's targets, side by side on this machine, in one run: BENCHMARKS.md's
# "Targets, side by side". Each part alternates the systems on fresh clusters.
#
#   scripts/perf-targets.sh [results dir]      # about 30 minutes with ROUNDS=2
#
# 1. cmd/bench's put over HTTP, 64 clients then 1, 100-byte values
#    (put-cost.sh): this build, the build before bbolt (BEFORE, default
#    0a7320c, built from git) and etcd's raftexample.
# 2. etcd's benchmark tool (etcd-bench.sh): put-1, put-64 and put-1m
#    (1 MB values, with each member's peak anonymous memory), against
#    etcd v3.6.8.
# 3. The latency floor of one durable write (scripts/floor).
# 4. A follower holding KEYS (2,000,000) keys restarted, to its first
#    linearizable read (restart-time.sh).
#
# Environment: ROUNDS (2), BEFORE (0a7320c), KEYS (2000000), SKIP (a list of
# parts to leave out: "before raftexample etcd floor restart").
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-perf-targets-results}
ROUNDS=${ROUNDS:-2}
BEFORE=${BEFORE:-0a7320c}
KEYS=${KEYS:-2000000}
SKIP=${SKIP:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
skip() { [[ " $SKIP " == *" $1 "* ]]; }

(cd "$repo" && go build -o "$bins/node" ./cmd/node)
binaries=("$bins/node")
if ! skip before; then
  git -C "$repo" archive --format=tar --prefix=before/ "$BEFORE" | tar -x -C "$bins"
  (cd "$bins/before" && go build -o "$bins/node-$BEFORE" ./cmd/node)
  binaries+=("$bins/node-$BEFORE")
fi
if ! skip raftexample; then
  go build -C "$repo/interop/raftexample" -o "$bins/raftexample" go.etcd.io/etcd/v3/contrib/raftexample
  binaries+=("$bins/raftexample")
fi

for c in 64 1; do
  echo "== put over HTTP, $c clients (put-cost.sh)" | tee -a "$out/summary.txt"
  CLIENTS=$c ROUNDS=$ROUNDS "$repo/scripts/put-cost.sh" "${binaries[@]}" 2>/dev/null | grep 'PUT/s' | tee -a "$out/summary.txt"
done
if ! skip etcd; then
  echo "== etcd's benchmark tool (etcd-bench.sh)" | tee -a "$out/summary.txt"
  NODE=$bins/node WORKLOADS="put-64 put-1 put-1m" ROUNDS=$ROUNDS "$repo/scripts/etcd-bench.sh" "$out/etcd-bench" 2>/dev/null | tee -a "$out/summary.txt"
fi
if ! skip floor; then
  echo "== the floor (scripts/floor)" | tee -a "$out/summary.txt"
  (cd "$repo" && go run ./scripts/floor) | tee -a "$out/summary.txt"
fi
if ! skip restart; then
  echo "== restart of a follower holding $KEYS keys (restart-time.sh)" | tee -a "$out/summary.txt"
  KEYS=$KEYS "$repo/scripts/restart-time.sh" "$bins/node" 2>/dev/null | tee -a "$out/summary.txt"
fi
echo "summary: $out/summary.txt"
