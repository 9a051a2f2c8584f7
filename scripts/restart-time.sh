#!/usr/bin/env bash
# Fills a three-member cluster of one node binary with KEYS keys (100-byte
# values), kills a follower with SIGKILL, writes a probe key through the
# leader, starts the follower again on its data dir and prints the time
# from its start to its first linearizable read of the probe key:
# BENCHMARKS.md's restart figure.
#
#   KEYS=1300000 scripts/restart-time.sh [node binary]   # default: builds ./cmd/node
set -euo pipefail
KEYS=${KEYS:-1300000}
source "$(dirname "$0")/lib.sh"
build "${1:-}"
start_cluster
GOMAXPROCS=1 "$bench" put --endpoints $E --target leader --clients 64 --val-size 100 --total "$KEYS" > /dev/null 2>&1
# A follower: a member that does not report itself leader.
f=1
for i in 3 2 1; do
  curl -s "http://127.0.0.1:${i}2380/v1/status" | grep -q '"raft_state":"StateLeader"' || { f=$i; break; }
done
kill -9 "${pids[$f]}"; wait "${pids[$f]}" 2>/dev/null || true
for i in 1 2 3; do
  [ "$i" = "$f" ] && continue
  curl -sf -XPUT -d after-kill "http://127.0.0.1:${i}2380/v1/kv/probe" >/dev/null && break
done
t0=$(date +%s.%N)
start_member "$f"
until [ "$(curl -s "http://127.0.0.1:${f}2380/v1/kv/probe" 2>/dev/null)" = after-kill ]; do sleep 0.01; done
t1=$(date +%s.%N)
echo "member $f, $KEYS keys: first linearizable read $(echo "$t1 - $t0" | bc) s after its start"
