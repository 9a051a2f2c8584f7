#!/usr/bin/env bash
# Fills a three-member cluster of one node binary in steps of STEP keys
# (100-byte values, 64 clients to the leader, as BENCHMARKS.md's growth
# table) and records after each step: throughput, p99.9 and max latency of
# the step, and each member's anonymous resident memory (RssAnon: the Go
# heap and stacks, not the page cache that holds a bbolt file).
#
#   scripts/growth.sh [node binary] > growth.csv   # default: builds ./cmd/node
#   STEP=250000 STEPS=10 scripts/growth.sh ...
#
# Then: python3 scripts/growth_svg.py bbolt=new.csv map=old.csv > docs/growth.svg
set -euo pipefail
STEP=${STEP:-250000}
STEPS=${STEPS:-10}
source "$(dirname "$0")/lib.sh"
build "${1:-}"
start_cluster
cd "$work"

rss() { awk '/RssAnon/ {printf "%d", $2/1024}' "/proc/$1/status"; }
echo "keys,put_per_s,p999_ms,max_ms,rss1_mb,rss2_mb,rss3_mb"
for s in $(seq "$STEPS"); do
  GOMAXPROCS=1 "$bench" put --endpoints $E --target leader --clients 64 --val-size 100 --total "$STEP" --json > step.json 2>/dev/null
  python3 - "$((s * STEP))" "$(rss "${pids[1]}")" "$(rss "${pids[2]}")" "$(rss "${pids[3]}")" <<'PY'
import json, sys
d = json.load(open("step.json"))
l = d["latency_us"]
print(",".join([sys.argv[1], str(round(d["ops_per_second"])), "%.1f" % (l["p99_9"] / 1000), "%.0f" % (l["max"] / 1000)] + sys.argv[2:5]))
PY
done
