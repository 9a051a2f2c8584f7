#!/usr/bin/env bash
# Writes 1 MB values with 64 clients for 15 s into a fresh three-member
# cluster of one node binary and prints each member's peak resident memory,
# anonymous (RssAnon, sampled every 100 ms: the Go heap and stacks) and in
# all (VmHWM, which also counts the pages of a mapped db file, page cache
# the kernel takes back when it needs it), and the run's throughput:
# BENCHMARKS.md's large-value figure.
#
#   scripts/large-values.sh [node binary]     # default: builds ./cmd/node
set -euo pipefail
source "$(dirname "$0")/lib.sh"
build "${1:-}"
start_cluster
cd "$work"
sample() {
  while sleep 0.1; do
    for p in "${pids[@]}"; do awk -v p="$p" '/RssAnon/ {print p, $2}' "/proc/$p/status" 2>/dev/null; done
  done
}
sample > anon.txt &
sampler=$!
GOMAXPROCS=1 "$bench" put --endpoints $E --target leader --clients 64 --val-size 1048576 --duration 15s --json > run.json 2>/dev/null
kill $sampler
python3 - <<'PY'
import json
d = json.load(open("run.json"))
print("PUT/s of 1 MB: %.0f, p99 %.0f ms, errors %d (%s)" % (d["ops_per_second"], d["latency_us"]["p99"] / 1000, d["errors"]["total"],
      {k: v for k, v in d["errors"].items() if k != "total" and v}))
PY
for p in "${pids[@]}"; do
  anon=$(awk -v p="$p" '$1 == p && $2 > m {m = $2} END {printf "%d", m/1024}' anon.txt)
  awk -v p="$p" -v a="$anon" '/VmHWM/ {printf "member pid %s: peak anonymous RSS %d MB, peak RSS %d MB\n", p, a, $2/1024}' "/proc/$p/status"
done
du -sh data/node-1 | awk '{print "data dir of member 1: " $1}'
