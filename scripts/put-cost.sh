#!/usr/bin/env bash
# What a PUT costs the members, binaries alternating: for each binary and
# round, a fresh three-member cluster, one put run (CLIENTS clients, 64 by
# default, 100-byte values, 20 s, GOMAXPROCS=1 for the generator), and per
# acknowledged write
# the CPU of the three members together (utime+stime from /proc/<pid>/stat)
# and the bytes each wrote to disk on average (write_bytes of
# /proc/<pid>/io): BENCHMARKS.md's "What revisions cost a put" table.
#
#   ROUNDS=2 scripts/put-cost.sh <node binary> [<node binary> ...]
#
# A binary named raftexample* is etcd's raftexample (lib.sh), built with
#   go build -C interop/raftexample -o /tmp/raftexample go.etcd.io/etcd/v3/contrib/raftexample
set -euo pipefail
ROUNDS=${ROUNDS:-2}
DUR=${DUR:-20s}
CLIENTS=${CLIENTS:-64}
[ $# -ge 1 ] || { echo "usage: scripts/put-cost.sh <node binary> [<node binary> ...]" >&2; exit 2; }
source "$(dirname "$0")/lib.sh"
build "$1"
tick=$(getconf CLK_TCK)

# usage: one PID: "cpu-ticks written-bytes" so far.
usage() { echo "$(awk '{print $14 + $15}' "/proc/$1/stat") $(awk '/^write_bytes/ {print $2}' "/proc/$1/io")"; }

for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    start_cluster "$bin"
    before=()
    for i in 1 2 3; do before+=("$(usage "${pids[$i]}")"); done
    # raftexample has no status to find its leader by; it answers a PUT
    # once proposed, before it commits, so any member will do: member 1.
    target=(--endpoints $E --target leader)
    if is_raftexample "$bin"; then target=(--endpoints http://127.0.0.1:12380 --target spread); fi
    GOMAXPROCS=1 "$bench" put "${target[@]}" --clients "$CLIENTS" --val-size 100 --duration "$DUR" --json > "$work/run.json"
    after=()
    for i in 1 2 3; do after+=("$(usage "${pids[$i]}")"); done
    python3 - "$(basename "$bin")" "$round" "$tick" "$work/run.json" "${before[@]}" "${after[@]}" <<'PY'
import json, sys
name, rnd, tick, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
before = [tuple(map(int, s.split())) for s in sys.argv[5:8]]
after = [tuple(map(int, s.split())) for s in sys.argv[8:11]]
d = json.load(open(path))
s = d.get("writes") or d
n = s["ops"]  # acknowledged writes
cpu = sum(a[0] - b[0] for a, b in zip(after, before)) / tick
written = sum(a[1] - b[1] for a, b in zip(after, before)) / 3
lat = s.get("latency_us") or d["latency_us"]
print(f"{name} (round {rnd}) | {s['ops_per_second']:.0f} PUT/s | p50 {lat['p50'] / 1000:.2f} ms | members' CPU {cpu * 1e6 / n:.0f} µs/write | "
      f"{written / n:.0f} bytes written per member per write")
PY
  done
done
