#!/usr/bin/env bash
# The coordination API's numbers in BENCHMARKS.md, on a three-member
# cluster of one node binary (100-byte values, 64 clients, GOMAXPROCS=1 for
# the load generator, as the other tables):
#
#   scripts/coord-bench.sh [node binary] > coord.txt
#
# prints one line per run: what ran, then the bench's figures. With
# OLD=<binary of a previous build>, the put runs alternate between the two,
# each on a fresh cluster, to show what the revisions and the history cost.
# The watcher sweep (0, 1, 10, 100, 1000 watchers on the writers' prefix)
# goes to $WATCH_CSV (default watch.csv), which scripts/watch_svg.py draws:
#
#   python3 scripts/watch_svg.py watch.csv > docs/watch.svg
set -euo pipefail
DUR=${DUR:-20s}
WATCH_CSV=${WATCH_CSV:-watch.csv}
source "$(dirname "$0")/lib.sh"
build "${1:-}"

# run LABEL bench-args...: one line of figures from the bench's JSON.
run() {
  local label=$1
  shift
  GOMAXPROCS=1 "$bench" "$@" --endpoints $E --clients 64 --json > "$work/run.json" 2>/dev/null || true
  python3 - "$label" "$work/run.json" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
s = d.get("writes") or d.get("written") or d
l = s["latency_us"]
out = [label, "%.0f/s" % s["ops_per_second"], "p50 %.1f ms" % (l["p50"] / 1000), "p99 %.1f ms" % (l["p99"] / 1000),
       "max %.0f ms" % (l["max"] / 1000), "errors %d" % s["errors"]["total"]]
if "refused" in d:
    out.append("refused %.0f/s (%.1f%%)" % (d["refused"]["ops_per_second"], 100 * d["refused_share"]))
if "keys_per_second" in d:
    out.append("%.0f keys/s" % d["keys_per_second"])
w = d.get("watch")
if w:
    dl = w["delay_us"]
    out += ["delivered %d of %d" % (w["delivered"], w["expected_deliveries"]), "missed %d" % w["missed"],
            "ended early %d" % w["ended_early"],
            "delay p50 %.1f p99 %.1f p99.9 %.1f max %.1f ms" % (dl["p50"] / 1000, dl["p99"] / 1000, dl["p99_9"] / 1000, dl["max"] / 1000)]
print(" | ".join(out))
PY
}

# watchrow N: the sweep's CSV row after a watch (or, for 0, a put) run.
watchrow() {
  python3 - "$1" "$work/run.json" <<'PY' >> "$WATCH_CSV"
import json, sys
n, d = sys.argv[1], json.load(open(sys.argv[2]))
s = d.get("writes") or d
w = d.get("watch") or {"delay_us": {"p50": 0, "p99": 0, "p99_9": 0}}
print(",".join([n, "%.0f" % s["ops_per_second"], "%.1f" % (s["latency_us"]["p99"] / 1000),
                "%.1f" % (w["delay_us"]["p99"] / 1000), "%.1f" % (w["delay_us"]["p99_9"] / 1000)]))
PY
}

if [ -n "${OLD:-}" ]; then
  for round in 1 2; do
    for b in "$OLD" "$bin"; do
      start_cluster "$b"
      run "put ($(basename "$b"), run $round)" put --target leader --val-size 100 --duration "$DUR"
    done
  done
fi

start_cluster "$bin"
run "put" put --target leader --val-size 100 --duration "$DUR"
run "cas, one writer per key" cas --target leader --val-size 100 --duration "$DUR"
run "cas, 8 writers per key" cas --target leader --val-size 100 --contention 8 --duration "$DUR"
run "txn, compare + 2 puts" txn --target leader --val-size 100 --duration "$DUR"
run "range 100 of 10,000 keys, linearizable" range --target leader --keys 10000 --range-limit 100 --duration "$DUR"
run "range 100 of 10,000 keys, serializable, spread" range --target spread --consistency serializable --keys 10000 --range-limit 100 --duration "$DUR"
run "range 10,000 keys, linearizable" range --target leader --keys 10000 --range-limit 10000 --duration "$DUR"
run "range 10,000 keys, serializable, spread" range --target spread --consistency serializable --keys 10000 --range-limit 10000 --duration "$DUR"

echo "watchers,put_per_s,put_p99_ms,delay_p99_ms,delay_p999_ms" > "$WATCH_CSV"
for n in 0 1 10 100 1000; do
  start_cluster "$bin"
  if [ "$n" = 0 ]; then
    run "watch sweep: no watchers (put)" put --target leader --val-size 100 --duration "$DUR"
  else
    run "watch sweep: $n watchers" watch --target leader --val-size 100 --watchers "$n" --duration "$DUR"
  fi
  watchrow "$n"
done
