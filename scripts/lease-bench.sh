#!/usr/bin/env bash
# What leases cost writes (BENCHMARKS.md, "Leases"): in each of ROUNDS
# rounds, four runs alternating, each on a fresh three-member cluster, 64
# clients PUTting 100-byte values to the leader (GOMAXPROCS=1 for the
# generator):
#
#   none     DUR (20 s)      against  leases   --leases $LEASES (10,000) kept alive
#   none     EXPDUR (30 s)   against  expire   --leases $LEASES --leases-expire
#
# with --lease-ttl $TTL (10s) for both.
#
# One line per run: PUT/s, p50, p99.9 and max latency; for the leases, the
# keep-alives and the keys left; for the expiry, when the first and the
# last key were seen gone, and the PUTs between the two. "others" is the
# CPU the rest of the machine used during the run (cores: the machine's
# busy time less this script's children's), which tells a quiet box from a
# shared one. Before the first run the script waits, up to 25 minutes,
# for the 1-minute load average to fall under LOAD (1.5), and before each
# run for 5 s in which the rest of the machine used under 0.2 of a core.
#
#   ROUNDS=2 scripts/lease-bench.sh [<node binary>]
set -euo pipefail
ROUNDS=${ROUNDS:-2}
DUR=${DUR:-20s}
EXPDUR=${EXPDUR:-30s}
LEASES=${LEASES:-10000}
TTL=${TTL:-10s}
source "$(dirname "$0")/lib.sh"
build "${1:-}"

for _ in $(seq 50); do
  awk -v max="${LOAD:-1.5}" '{ exit !($1 < max) }' /proc/loadavg && break
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg): waiting 30 s for it to fall under ${LOAD:-1.5}" >&2
  sleep 30
done
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

# The machine's CPU ticks in user and system mode, and those of this
# shell's reaped children (the members, the generator).
ticks() { echo "$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat) $(awk '{ print $16 + $17 }' /proc/$$/stat)"; }

# quiet waits (up to 5 minutes) for 5 s in which the rest of the machine
# used under 0.2 of a core, with no member running: the load average would
# count the previous run's.
quiet() {
  local a b
  for _ in $(seq 30); do
    a=$(ticks) && sleep 5 && b=$(ticks)
    awk -v a="$a" -v b="$b" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { split(a, x); split(b, y); exit !((y[1] - x[1]) - (y[2] - x[2]) < 0.2 * 5 * hz) }' && return
    echo "the rest of the machine is busy: waiting" >&2
    sleep 5
  done
}

run() { # name duration [bench flags...]
  local name=$1 dur=$2 before after t0 t1
  shift 2
  quiet
  before=$(ticks) t0=$(date +%s.%N)
  start_cluster
  GOMAXPROCS=1 "$bench" put --endpoints $E --target leader --clients 64 --val-size 100 --duration "$dur" --json "$@" > "$work/run.json"
  stop_cluster
  after=$(ticks) t1=$(date +%s.%N)
  python3 - "$name" "$round" "$work/run.json" "$before" "$after" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
name, rnd, path, before, after, t0, t1, tick = sys.argv[1:]
d = json.load(open(path))
(b_all, b_own), (a_all, a_own) = map(int, before.split()), map(int, after.split())
others = ((a_all - b_all) - (a_own - b_own)) / int(tick) / (float(t1) - float(t0))
ms = lambda us: f"{us / 1000:.1f} ms"
lat = d["latency_us"]
line = (f"{name:6} (round {rnd}, {d['duration_seconds']:.0f} s) | {d['ops_per_second']:,.0f} PUT/s | p50 {ms(lat['p50'])} | "
        f"p99.9 {ms(lat['p99_9'])} | max {ms(lat['max'])} | errors {d['errors']['total']}")
l = d.get("leases")
if l:
    line += f" | keep-alives {l['keepalives_sent']:,} sent, {l['keepalives_failed']} failed; {l['keys_left']:,} keys left"
    if l["expire"]:
        w = l["while_expiring"]
        line += (f"; gone {l['first_gone_seconds']:.2f}-{l['all_gone_seconds']:.2f} s in | while expiring "
                 f"({w['seconds']:.1f} s): {w['ops_per_second']:,.0f} PUT/s, p99.9 {ms(w['latency_us']['p99_9'])}, max {ms(w['latency_us']['max'])}")
print(f"{line} | others {others:.2f} cores", flush=True)
PY
}

for round in $(seq "$ROUNDS"); do
  run none "$DUR"
  run leases "$DUR" --leases "$LEASES" --lease-ttl "$TTL"
  run none "$EXPDUR"
  run expire "$EXPDUR" --leases "$LEASES" --lease-ttl "$TTL" --leases-expire
done
