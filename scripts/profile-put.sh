#!/usr/bin/env bash
# Profiles one member of a fresh three-member cluster under cmd/bench's put
# load: BENCHMARKS.md's "Where the time goes". The member runs with
# --enable-pprof; after 3 s of load it takes a CPU profile of DUR - 6 seconds,
# then the allocations since start and the heap in use, and each member's
# anonymous memory (RssAnon).
#
#   scripts/profile-put.sh OUT [node binary]     # OUT.cpu.pprof, OUT.allocs.pprof, OUT.heap.pprof, OUT.bench.txt
#   go tool pprof -top -cum OUT.cpu.pprof
#
# Environment: ROLE (leader or follower), CLIENTS (64), VAL (value bytes,
# 100), DUR (seconds of load, 20).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: scripts/profile-put.sh OUT [node binary]" >&2; exit 2; }
out=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROLE=${ROLE:-leader}
CLIENTS=${CLIENTS:-64}
VAL=${VAL:-100}
DUR=${DUR:-20}
source "$(dirname "$0")/lib.sh"
build "${2:-}"
start_member() {
  (cd "$work/data" && exec "${2:-$bin}" --id "$1" --cluster $C --port "${1}2380" --log-level warn --enable-pprof >> "node$1.log" 2>&1) &
  pids[$1]=$!
}
start_cluster
m=
for i in 1 2 3; do
  if curl -s "http://127.0.0.1:${i}2380/v1/status" | grep -q '"raft_state":"StateLeader"'; then
    [ "$ROLE" = leader ] && m=$i
  elif [ "$ROLE" = follower ] && [ -z "$m" ]; then
    m=$i
  fi
done
[ -n "$m" ] || { echo "no $ROLE found" >&2; exit 1; }
echo "profiling member $m ($ROLE)"
GOMAXPROCS=1 "$bench" put --endpoints $E --target leader --clients "$CLIENTS" --val-size "$VAL" --duration "${DUR}s" > "$out.bench.txt" 2>&1 &
load=$!
sleep 3 # into the load: not synchronization
base=http://127.0.0.1:${m}2380/debug/pprof
curl -s -o "$out.cpu.pprof" "$base/profile?seconds=$((DUR - 6))"
curl -s -o "$out.allocs.pprof" "$base/allocs"
curl -s -o "$out.heap.pprof" "$base/heap"
for i in 1 2 3; do echo "member $i RssAnon $(awk '/^RssAnon/ {print $2, $3}' "/proc/${pids[$i]}/status")"; done
wait "$load"
grep -E 'Throughput|Latency' "$out.bench.txt"
