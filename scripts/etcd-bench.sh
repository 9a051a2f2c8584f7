#!/usr/bin/env bash
# This node and etcd v3.6.8 side by side under etcd's own benchmark tool
# (tools/benchmark, pinned with etcd in interop/raftexample/tools.go), with
# the same flags for both: BENCHMARKS.md's "etcd's benchmark tool, side by
# side". Each run is a fresh three-member cluster of one system on
# 127.0.0.1 (free ports, a temporary data dir, fsync on: both systems'
# defaults), one system at a time; the systems alternate within each round
# and swap which goes first from round to round. Per run it records what the
# tool reports (requests/s, p50, p99, errors) and the CPU time
# (utime+stime of /proc/<pid>/stat) of each of the three members per
# acknowledged request: per acknowledged write for the write workloads.
#
#   scripts/etcd-bench.sh [results dir]        # ROUNDS=3 by default
#   QUICK=1 ROUNDS=1 scripts/etcd-bench.sh     # totals / 10: a check that every workload runs
#
# Environment:
#   ROUNDS      rounds (default 3)
#   QUICK=1     every total divided by 10 (about 1 to 2 s a run)
#   WORKLOADS   a subset, in order (default: all, as listed below)
#   SYSTEMS     default "node etcd"
#   NODE, ETCD, BENCHMARK, ETCDCTL   binaries to use instead of building them
#   BENCH_PROCS GOMAXPROCS of the benchmark tool (default 1, as the other scripts)
#   RESULTS     the results dir when no argument is given (default ./etcd-bench-results)
#
# Workloads (the tool's flags, identical for both systems; endpoints are the
# three members, and --target-leader sends every connection to the leader):
#   put-1          --target-leader --clients 1 --conns 1 put --key-size 8 --sequential-keys --key-space-size 100000 --val-size 100 --total 10000
#   put-64         the same with --clients 64 --conns 8 and --total 100000
#   range-l        --clients 64 --conns 8 range foo --consistency l --total 200000  (a 100-byte value at foo; conns spread over the members)
#   range-s        the same with --consistency s --total 300000
#   txn-put        --target-leader --clients 64 --conns 8 txn-put --key-size 8 --key-space-size 100000 --val-size 100 --total 100000
#   watch-latency  --target-leader watch-latency (its defaults: 10 streams x 10 watchers of one key on
#                  one conn, 1,000 puts at 100/s from another): the puts/s is the tool's rate, and
#                  p50/p99 are of the events, from a put's acknowledgement to each watcher's event
#                  (0 for an event that came first); CPU per put
#   lease-keepalive --target-leader --clients 64 --conns 8 lease-keepalive --total 200000 (each a KeepAliveOnce: a stream opened, one keep-alive, closed)
#   put-1m         --target-leader --clients 64 --conns 8 put --key-size 8 --key-space-size 1000 --val-size 1048576 --total 600:
#                  1 MB values; the note gives each member's peak anonymous memory (RssAnon,
#                  sampled every 100 ms: heap and stacks, not the mapped db) and the leader
#                  changes during the run (term before and after)
#   watch-sweep    1,000 watchers of one key on 10 streams (10 conns spread over the members:
#                  `watch --streams 10 --watch-per-stream 100 --watched-key-total 1 --key-size 8
#                  --key-space-size 1 --put-rate 1 --put-total T`, in the background), and,
#                  once they are all created, 64 writers of that key to the leader
#                  (`--target-leader --clients 64 --conns 8 put --key-size 8 --key-space-size 1
#                  --val-size 100 --total T`, T = 10000). Every write is 1,000 events. Records
#                  the writers' figures, and the time from the first write until the watchers
#                  had received T x 1,000 events (the watch tool exits then), or "incomplete"
#                  if they had not within DELIVER_WAIT (120 s) after the last write.
#
# Output: a table on stdout (also $results/table.txt), one TSV row per run in
# $results/runs.tsv, and the tool's own output of each run in $results/raw/
# (its stderr, gRPC's log, beside it; the members' logs too when a run failed).
set -euo pipefail
ROUNDS=${ROUNDS:-3}
QUICK=${QUICK:-0}
SYSTEMS=${SYSTEMS:-node etcd}
ALL_WORKLOADS="put-1 put-64 range-l range-s txn-put watch-latency lease-keepalive watch-sweep put-1m"
WORKLOADS=${WORKLOADS:-$ALL_WORKLOADS}
BENCH_PROCS=${BENCH_PROCS:-1}
DELIVER_WAIT=${DELIVER_WAIT:-120}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
results=${1:-${RESULTS:-etcd-bench-results}}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$results/raw"
results=$(cd "$results" && pwd)

# total N: a workload's total, divided by 10 under QUICK=1.
total() { if [ "$QUICK" = 1 ]; then echo $(($1 / 10)); else echo "$1"; fi; }

work=$(mktemp -d)
pids=()
bgpid=
stop_cluster() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  [ -n "$bgpid" ] && kill "$bgpid" 2>/dev/null || true
  stop_cluster
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binaries: given, or built from the pins in interop/raftexample.
NODE=${NODE:-}
ETCD=${ETCD:-}
BENCHMARK=${BENCHMARK:-}
ETCDCTL=${ETCDCTL:-}
if [ -z "$NODE" ]; then (cd "$repo" && go build -o "$work/node" ./cmd/node); NODE=$work/node; fi
for t in ETCD:go.etcd.io/etcd/server/v3 BENCHMARK:go.etcd.io/etcd/v3/tools/benchmark ETCDCTL:go.etcd.io/etcd/etcdctl/v3; do
  var=${t%%:*}
  if [ -z "${!var}" ]; then
    (cd "$repo/interop/raftexample" && go build -o "$work/$var" "${t#*:}")
    printf -v "$var" '%s' "$work/$var"
  fi
done
tick=$(getconf CLK_TCK)

source "$(dirname "$0")/freeports.sh"

# start_cluster SYSTEM: three fresh members; sets EPS (host:port, comma
# separated), pids, leader (index 0..2 into pids) and leader_ep.
start_cluster() {
  local sys=$1 ports peer client i cluster="" dir=$work/data
  stop_cluster
  rm -rf "$dir" && mkdir -p "$dir"
  read -r -a ports <<< "$(freeports 6)"
  for i in 0 1 2; do
    peer=http://127.0.0.1:${ports[$i]}
    if [ "$sys" = node ]; then cluster+=${cluster:+,}$((i + 1))=$peer; else cluster+=${cluster:+,}m$((i + 1))=$peer; fi
  done
  EPS=127.0.0.1:${ports[3]},127.0.0.1:${ports[4]},127.0.0.1:${ports[5]}
  local token=bench-$$-$RANDOM
  for i in 0 1 2; do
    peer=http://127.0.0.1:${ports[$i]}
    client=http://127.0.0.1:${ports[$((i + 3))]}
    if [ "$sys" = node ]; then
      "$NODE" --id $((i + 1)) --cluster "$cluster" --initial-cluster-token "$token" \
        --listen-client-urls "$client" --data-dir "$dir/m$((i + 1))" --log-level warn >> "$dir/m$((i + 1)).log" 2>&1 &
    else
      "$ETCD" --name m$((i + 1)) --initial-cluster "$cluster" --initial-cluster-token "$token" \
        --initial-cluster-state new --initial-advertise-peer-urls "$peer" --listen-peer-urls "$peer" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --data-dir "$dir/m$((i + 1))" --log-level error >> "$dir/m$((i + 1)).log" 2>&1 &
    fi
    pids+=($!)
  done
  local deadline=$((SECONDS + 60))
  until "$ETCDCTL" --endpoints "$EPS" --command-timeout 2s endpoint health >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "the $sys cluster did not answer endpoint health within 60 s; the ends of its logs:" >&2
      tail -n 5 "$dir"/m*.log >&2
      "$ETCDCTL" --endpoints "$EPS" --command-timeout 2s endpoint health >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  leader=
  until [ -n "$leader" ]; do
    leader=$("$ETCDCTL" --endpoints "$EPS" --command-timeout 2s endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
st = json.load(sys.stdin)
eps = sys.argv[1].split(",")
for s in st:
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(eps.index(s["Endpoint"].replace("http://", "")))
' "$EPS" || true)
    if [ -z "$leader" ]; then
      [ $SECONDS -ge $deadline ] && { echo "no leader of the $sys cluster in endpoint status" >&2; exit 1; }
      sleep 0.2
    fi
  done
}

# anon_sampler: every 100 ms, each member's RssAnon (kB) to $work/anon, a
# line per member: "index kB".
anon_sampler() {
  : > "$work/anon"
  while sleep 0.1; do
    local i
    for i in 0 1 2; do awk -v i="$i" '/^RssAnon/ {print i, $2}' "/proc/${pids[$i]}/status" 2>/dev/null >> "$work/anon"; done
  done
}

# peak_anon: the peaks anon_sampler saw, in MB, the leader's first.
peak_anon() {
  awk -v l="$leader" '{ if ($2 > m[$1]) m[$1] = $2 } END {
    printf "%d", m[l] / 1024; for (i = 0; i < 3; i++) if (i != l) printf " / %d", m[i] / 1024 }' "$work/anon"
}

# term: the raft term etcdctl reports for the leader's endpoint; a change
# over a run is an election.
term() {
  "$ETCDCTL" --endpoints "${EPS//,*/}" --command-timeout 2s endpoint status -w json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["raftTerm"])' 2>/dev/null || echo "?"
}

# cpu: the members' utime+stime so far, in ticks, in pids' order.
cpu() { local p; for p in "${pids[@]}"; do awk '{printf "%d ", $14 + $15}' "/proc/$p/stat"; done; }

# bench OUT ARGS...: the benchmark tool, its stdout to OUT and its stderr
# (gRPC's log, panics) to OUT.stderr; its exit status.
bench() {
  local out=$1
  shift
  echo "benchmark --endpoints <3 members> $*" > "$out"
  local rc=0
  GOMAXPROCS=$BENCH_PROCS timeout "$RUN_TIMEOUT" "$BENCHMARK" --endpoints "$EPS" --precise "$@" >> "$out" 2> "$out.stderr" || rc=$?
  return $rc
}

# complain SYSTEM WORKLOAD ROUND RC RAW: what the tool said of a failure.
complain() {
  echo "!! $1 failed $2 (round $3, exit $4); the tool said:" >&2
  { if grep -q 'Error distribution' "$5"; then sed -n '/Error distribution/,$p' "$5"; else tail -n 5 "$5"; fi; grep -v '^[0-9/]* [0-9:]* INFO: \|^[ {}]' "$5.stderr" 2>/dev/null | head -n 20; } >&2 || true
}

# record ROUND WORKLOAD SYSTEM RAW RC CPU_BEFORE CPU_AFTER [EXTRA]: one TSV row.
record() {
  python3 - "$@" "$leader" "$tick" >> "$results/runs.tsv" <<'PY'
import re, sys
rnd, wl, system, raw, rc, before, after, extra, leader, tick = sys.argv[1:11]
text = open(raw, errors="replace").read()
# the summary that counts: for watch-latency the watch events', else the first
def summaries(t):
    return [m for m in re.split(r"\n(?=Summary:)", t) if m.startswith("Summary:")]
def figures(s):
    g = lambda pat: (float(m.group(1)) if (m := re.search(pat, s)) else float("nan"))
    rps, total = g(r"Requests/sec:\s*([0-9.eE+-]+)"), g(r"Total:\s*([0-9.eE+-]+) secs")
    return {"rps": rps, "secs": total, "n": round(rps * total) if rps == rps else 0,
            "p50": g(r"\n\s*50% in ([0-9.eE+-]+) secs") * 1e3, "p99": g(r"\n\s*99% in ([0-9.eE+-]+) secs") * 1e3}
ss = summaries(text)
if wl == "watch-latency" and len(ss) >= 2:
    # the puts' rate (set by the tool), the events' latency
    put, ev = figures(ss[0]), figures(ss[1])
    main = dict(put, p50=ev["p50"], p99=ev["p99"])
    ops = put["n"]
    note = "p50/p99 of the events (a put's acknowledgement to each watcher's event); puts' p50 %.2f p99 %.2f ms" % (put["p50"], put["p99"])
elif ss:
    main = figures(ss[0])
    ops = main["n"]
    note = ""
else:
    main = {"rps": float("nan"), "p50": float("nan"), "p99": float("nan"), "n": 0}
    ops, note = 0, "no summary"
errs = sum(int(n) for n in re.findall(r"^\s*\[(\d+)\]\t", text.split("Error distribution:")[-1], re.M)) \
    if "Error distribution:" in text else 0
if rc != "0":
    note = (note + "; " if note else "") + "exit %s" % rc
if extra:
    note = (note + "; " if note else "") + extra
b, a = [int(x) for x in before.split()], [int(x) for x in after.split()]
secs = [(y - x) / int(tick) for x, y in zip(b, a)]
li = int(leader)
order = [li] + [i for i in range(3) if i != li]
per = ["%.1f" % (secs[i] * 1e6 / ops) if ops else "nan" for i in order]
tot = "%.1f" % (sum(secs) * 1e6 / ops) if ops else "nan"
print("\t".join([rnd, wl, system, str(ops), str(errs), "%.1f" % main["rps"], "%.3f" % main["p50"], "%.3f" % main["p99"],
                 tot, *per, note]))
PY
}

# run ROUND WORKLOAD SYSTEM: one fresh cluster, one run, one TSV row.
run() {
  local rnd=$1 wl=$2 sys=$3 raw="$results/raw/r$1-$2-$3.txt" rc=0 before after extra=""
  start_cluster "$sys"
  local W=(--clients 64 --conns 8)
  local L=(--target-leader)
  case $wl in
    range-l | range-s)
      "$ETCDCTL" --endpoints "$EPS" put foo "$(head -c 100 /dev/zero | tr '\0' v)" > /dev/null ;;
  esac
  before=$(cpu)
  case $wl in
    put-1) bench "$raw" "${L[@]}" --clients 1 --conns 1 put --key-size 8 --sequential-keys --key-space-size 100000 --val-size 100 --total "$(total 10000)" || rc=$? ;;
    put-64) bench "$raw" "${L[@]}" "${W[@]}" put --key-size 8 --sequential-keys --key-space-size 100000 --val-size 100 --total "$(total 100000)" || rc=$? ;;
    range-l) bench "$raw" "${W[@]}" range foo --consistency l --total "$(total 200000)" || rc=$? ;;
    range-s) bench "$raw" "${W[@]}" range foo --consistency s --total "$(total 300000)" || rc=$? ;;
    txn-put) bench "$raw" "${L[@]}" "${W[@]}" txn-put --key-size 8 --key-space-size 100000 --val-size 100 --total "$(total 100000)" || rc=$? ;;
    watch-latency) bench "$raw" "${L[@]}" watch-latency --put-total "$(total 1000)" || rc=$? ;;
    lease-keepalive) bench "$raw" "${L[@]}" "${W[@]}" lease-keepalive --total "$(total 200000)" || rc=$? ;;
    put-1m)
      anon_sampler &
      sampler=$!
      term0=$(term)
      bench "$raw" "${L[@]}" "${W[@]}" put --key-size 8 --key-space-size 1000 --val-size 1048576 --total "$(total 600)" || rc=$?
      kill "$sampler"; wait "$sampler" 2>/dev/null || true
      extra="peak RssAnon MB (leader first) $(peak_anon); raft term $term0 -> $(term)" ;;
    watch-sweep) sweep "$raw" || rc=$? ;;
    *) echo "unknown workload $wl" >&2; exit 2 ;;
  esac
  after=$(cpu)
  [ "$wl" = watch-sweep ] && extra=$(cat "$work/sweep-note")
  if [ "$rc" != 0 ] || grep -q 'Error distribution' "$raw"; then
    complain "$sys" "$wl" "$rnd" "$rc" "$raw"
    for i in 1 2 3; do cp "$work/data/m$i.log" "${raw%.txt}-m$i.log" 2>/dev/null || true; done
  fi
  record "$rnd" "$wl" "$sys" "$raw" "$rc" "$before" "$after" "$extra"
  stop_cluster
}

# sweep RAW: the watcher sweep (see the top); the writers' output to RAW, the
# watchers' to RAW.watch, a note on delivery to $work/sweep-note.
sweep() {
  local raw=$1 T rc=0 t0 t1 t2 deadline
  T=$(total 10000)
  echo "watchers: benchmark --endpoints <3 members> --clients 10 --conns 10 watch --streams 10 --watch-per-stream 100 --watched-key-total 1 --key-size 8 --key-space-size 1 --put-rate 1 --put-total $T" > "$raw.watch"
  GOMAXPROCS=$BENCH_PROCS "$BENCHMARK" --endpoints "$EPS" --precise --clients 10 --conns 10 watch --streams 10 --watch-per-stream 100 \
    --watched-key-total 1 --key-size 8 --key-space-size 1 --put-rate 1 --put-total "$T" >> "$raw.watch" 2> "$raw.watch.stderr" &
  bgpid=$!
  deadline=$((SECONDS + 60))
  until grep -q 'Watch events received summary\|Watch creation summary' "$raw.watch"; do
    if ! kill -0 "$bgpid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
      echo "watchers not created" > "$work/sweep-note"
      kill "$bgpid" 2>/dev/null || true; wait "$bgpid" 2>/dev/null || true; bgpid=
      { echo "the watch tool did not create its watchers; it said:"; cat "$raw.watch"; grep -v INFO "$raw.watch.stderr" | tail -n 20; } >> "$raw"
      return 1
    fi
    sleep 0.1
  done
  t0=$(date +%s.%N)
  bench "$raw" --target-leader --clients 64 --conns 8 put --key-size 8 --key-space-size 1 --val-size 100 --total "$T" || rc=$?
  t1=$(date +%s.%N)
  deadline=$((SECONDS + DELIVER_WAIT))
  while kill -0 "$bgpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  t2=$(date +%s.%N)
  if kill -0 "$bgpid" 2>/dev/null; then
    kill "$bgpid" 2>/dev/null || true; wait "$bgpid" 2>/dev/null || true
    echo "delivery incomplete ${DELIVER_WAIT} s after the last write" > "$work/sweep-note"
  else
    local wrc=0
    wait "$bgpid" || wrc=$?
    if [ "$wrc" = 0 ] && grep -q 'Watch events received summary' "$raw.watch"; then
      # the tool ends all its watches as soon as one of them ends, so
      # count the events it received
      python3 - "$t0" "$t1" "$t2" "$T" "$raw.watch" > "$work/sweep-note" <<'PY'
import re, sys
t0, t1, t2, n = map(float, sys.argv[1:5])
s = open(sys.argv[5]).read().split("Watch events received summary:")[-1]
g = lambda pat: float(re.search(pat, s).group(1))
got = round(g(r"Requests/sec:\s*([0-9.eE+-]+)") * g(r"Total:\s*([0-9.eE+-]+) secs"))
if got < n * 1000:
    print("only %d of the %d x 1000 events delivered (a watch ended early), %.1f s after the first write" % (got, n, t2 - t0))
else:
    print("%d x 1000 events delivered %.1f s after the first write (%.0f events/s), %.2f s after the last write"
          % (n, t2 - t0, n * 1000 / (t2 - t0), t2 - t1))
PY
    else
      echo "the watch tool exited $wrc" > "$work/sweep-note"
      { echo "the watch tool exited $wrc; it said:"; tail -n 20 "$raw.watch"; grep -v INFO "$raw.watch.stderr" | tail -n 20; } >> "$raw"
      rc=1
    fi
  fi
  bgpid=
  return $rc
}

printf 'round\tworkload\tsystem\tacked\terrors\treq_per_s\tp50_ms\tp99_ms\tcpu_us_per_op_all\tcpu_us_leader\tcpu_us_follower_a\tcpu_us_follower_b\tnote\n' > "$results/runs.tsv"
read -r -a systems <<< "$SYSTEMS"
for round in $(seq "$ROUNDS"); do
  order=("${systems[@]}")
  if [ $((round % 2)) = 0 ]; then order=(); for ((i = ${#systems[@]} - 1; i >= 0; i--)); do order+=("${systems[$i]}"); done; fi
  for wl in $WORKLOADS; do
    for sys in "${order[@]}"; do
      echo "round $round: $wl on $sys" >&2
      run "$round" "$wl" "$sys"
      tail -n 1 "$results/runs.tsv" | cut -f 3- >&2
    done
  done
done

python3 - "$results/runs.tsv" <<'PY' | tee "$results/table.txt"
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
order = []
for r in rows:
    if r["workload"] not in order:
        order.append(r["workload"])
def f(x):
    try:
        v = float(x)
        return v if v == v else None
    except ValueError:
        return None
def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None
def fmt(v, p=0):
    return "–" if v is None else f"{v:,.{p}f}"
print("| workload | node req/s (runs) | etcd req/s (runs) | node/etcd | node p50, p99 ms | etcd p50, p99 ms "
      "| node CPU µs/op: leader, followers (all) | etcd CPU µs/op: leader, followers (all) | errors node/etcd |")
print("|---|---|---|---|---|---|---|---|---|")
for wl in order:
    cells = {}
    for sysname in ("node", "etcd"):
        rs = [r for r in rows if r["workload"] == wl and r["system"] == sysname]
        rps = [f(r["req_per_s"]) for r in rs]
        m = mean(rps)
        cells[sysname] = dict(
            m=m,
            rps=f"{fmt(m)} ({' / '.join(fmt(x) for x in rps)})" if rs else "–",
            lat=f"{fmt(mean([f(r['p50_ms']) for r in rs]), 2)}, {fmt(mean([f(r['p99_ms']) for r in rs]), 2)}" if rs else "–",
            cpu=(f"{fmt(mean([f(r['cpu_us_leader']) for r in rs]))}, {fmt(mean([f(r['cpu_us_follower_a']) for r in rs]))}, "
                 f"{fmt(mean([f(r['cpu_us_follower_b']) for r in rs]))} ({fmt(mean([f(r['cpu_us_per_op_all']) for r in rs]))})") if rs else "–",
            err=sum(int(r["errors"]) for r in rs))
    n, e = cells["node"], cells["etcd"]
    ratio = f"{n['m'] / e['m']:.2f}" if n["m"] and e["m"] and wl != "watch-latency" else "–"
    print(f"| {wl} | {n['rps']} | {e['rps']} | {ratio} | {n['lat']} | {e['lat']} | {n['cpu']} | {e['cpu']} | {n['err']} / {e['err']} |")
notes = [r for r in rows if r["note"]]
if notes:
    print()
    for r in notes:
        print(f"- round {r['round']}, {r['workload']}, {r['system']}: {r['note']}")
PY
echo "runs: $results/runs.tsv; the tool's output of each run: $results/raw/" >&2
