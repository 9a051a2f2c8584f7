#!/usr/bin/env bash
# Defragmentation of this node and of etcd v3.6.8 for the same data, side by
# side: BENCHMARKS.md's "Defragmentation: 2 M keys, 90 % deleted" (issue 20,
# item 4). For each system, on a fresh one-member cluster (defragmentation
# is a member's own affair; one member keeps the two cores for it) on
# 127.0.0.1, with each system's defaults (fsync on):
#
#   1. load N keys k/00000000.. with 100-byte values (defragprobe load:
#      transactions of 128 puts, 32 in flight);
#   2. delete 90 % of them: of each run of ten keys all but the first, by
#      one range deletion per run (defragprobe delete: 128 per transaction),
#      so the survivors are spread over the whole key space;
#   3. compact the history at the current revision (etcdctl compact
#      --physical), so that the deleted values and tombstones go;
#   4. start the probe (defragprobe probe, GOMAXPROCS=1 as the other load
#      generators here: PROBE_CLIENTS clients, each a put then a
#      linearizable get of its own key, one request at a time, every
#      request's start and latency logged), wait PRE seconds, run
#      `etcdctl defrag` once and time it, wait POST seconds, stop the probe;
#   5. record the db file's size (stat) and the db size and size in use that
#      `etcdctl endpoint status` reports, before and after, and the probe's
#      count, p50, p99 and maximum latency of the requests that overlapped
#      the defragmentation and of those wholly outside it.
#
#   scripts/defrag-bench.sh [results dir]        # N=2000000 by default
#   N=100000 scripts/defrag-bench.sh /tmp/db     # a check in a few minutes
#
# Environment:
#   N              keys loaded (default 2000000)
#   ROUNDS         rounds (default 1); the systems swap order each round
#   SYSTEMS        default "node etcd"
#   PRE, POST      seconds of probing before and after the defragmentation (default 5, 5)
#   PROBE_CLIENTS  the probe's clients (default 4)
#   PROFILE=1      a CPU profile and an execution trace of the node from the start of the
#                  defragmentation (--enable-pprof), PROFILE_SECS long (default 5), to
#                  raw/r<round>-node-cpu.pprof and raw/r<round>-node.trace
#   NODE, ETCD, ETCDCTL, DEFRAGPROBE   binaries to use instead of building them
#   RESULTS        the results dir when no argument is given (default ./defrag-bench-results)
#
# Output: a table on stdout (also $results/table.txt), one TSV row per run
# in $results/runs.tsv, and per run in $results/raw/: the probe's log, what
# etcdctl defrag said, the member's log and the load's rates.
set -euo pipefail
N=${N:-2000000}
ROUNDS=${ROUNDS:-1}
SYSTEMS=${SYSTEMS:-node etcd}
PRE=${PRE:-5}
POST=${POST:-5}
PROBE_CLIENTS=${PROBE_CLIENTS:-4}
PROFILE=${PROFILE:-0}
PROFILE_SECS=${PROFILE_SECS:-5}
results=${1:-${RESULTS:-defrag-bench-results}}
mkdir -p "$results/raw"
results=$(cd "$results" && pwd)

# $repo, $work (removed on exit), pids and stop_cluster, which stops every
# process in pids: the member, and the probe and profiler while they run.
source "$(dirname "$0")/lib.sh"
trap 'exit 130' INT TERM

NODE=${NODE:-}
ETCD=${ETCD:-}
ETCDCTL=${ETCDCTL:-}
DEFRAGPROBE=${DEFRAGPROBE:-}
if [ -z "$NODE" ]; then (cd "$repo" && go build -o "$work/node" ./cmd/node); NODE=$work/node; fi
if [ -z "$DEFRAGPROBE" ]; then (cd "$repo" && go build -o "$work/defragprobe" ./scripts/defragprobe); DEFRAGPROBE=$work/defragprobe; fi
for t in ETCD:go.etcd.io/etcd/server/v3 ETCDCTL:go.etcd.io/etcd/etcdctl/v3; do
  var=${t%%:*}
  if [ -z "${!var}" ]; then
    (cd "$repo/interop/raftexample" && go build -o "$work/$var" "${t#*:}")
    printf -v "$var" '%s' "$work/$var"
  fi
done

source "$(dirname "$0")/freeports.sh"

# start_member SYSTEM: a fresh one-member cluster; sets EP (host:port), DB
# (its db file) and MLOG (its log).
start_member() {
  local sys=$1 ports dir=$work/data
  stop_cluster
  rm -rf "$dir" && mkdir -p "$dir"
  read -r -a ports <<< "$(freeports 2)"
  local peer=http://127.0.0.1:${ports[0]} client=http://127.0.0.1:${ports[1]}
  EP=127.0.0.1:${ports[1]}
  MLOG=$dir/m1.log
  if [ "$sys" = node ]; then
    local pprof=()
    [ "$PROFILE" = 1 ] && pprof=(--enable-pprof)
    # info: the node logs each defragmentation's entries replayed and time
    "$NODE" --id 1 --cluster "$peer" --initial-cluster-token "defrag-$$" --listen-client-urls "$client" \
      --data-dir "$dir/m1" --log-level info "${pprof[@]}" >> "$MLOG" 2>&1 &
    DB=$dir/m1/db
  else
    "$ETCD" --name m1 --initial-cluster "m1=$peer" --initial-cluster-token "defrag-$$" \
      --initial-cluster-state new --initial-advertise-peer-urls "$peer" --listen-peer-urls "$peer" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --data-dir "$dir/m1" --log-level info >> "$MLOG" 2>&1 &
    DB=$dir/m1/member/snap/db
  fi
  pids[member]=$!
  local deadline=$((SECONDS + 60))
  until "$ETCDCTL" --endpoints "$EP" --command-timeout 2s endpoint health > /dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "${pids[member]}" 2>/dev/null; then
      echo "the $sys member did not answer endpoint health within 60 s; the end of its log:" >&2
      tail -n 5 "$MLOG" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# status: "revision dbSize dbSizeInUse" of the member.
status() {
  "$ETCDCTL" --endpoints "$EP" --command-timeout 10s endpoint status -w json | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]["Status"]
print(s["header"]["revision"], s["dbSize"], s.get("dbSizeInUse", 0))'
}

# run ROUND SYSTEM: one fresh member, one defragmentation, one TSV row.
run() {
  local rnd=$1 sys=$2 raw="$results/raw/r$1-$2" t0 t1 rev size inuse fsize asize ainuse afsize rc=0 p
  start_member "$sys"
  echo "  loading $N keys" >&2
  "$DEFRAGPROBE" load --endpoint "$EP" --keys "$N" > "$raw-load.txt"
  "$DEFRAGPROBE" delete --endpoint "$EP" --keys "$N" >> "$raw-load.txt"
  read -r rev size inuse <<< "$(status)"
  echo "  loaded and deleted: revision $rev, db $size bytes ($inuse in use); compacting" >&2
  "$ETCDCTL" --endpoints "$EP" --command-timeout 30m compact --physical "$rev" >> "$raw-load.txt"
  GOMAXPROCS=1 "$DEFRAGPROBE" probe --endpoint "$EP" --clients "$PROBE_CLIENTS" --out "$raw-probe.tsv" &
  pids[probe]=$!
  # The node deletes a compacted history a thousand events an apply: the
  # probe's writes before the defragmentation finish it.
  sleep "$PRE"
  read -r rev size inuse <<< "$(status)"
  fsize=$(stat -c %s "$DB")
  if [ "$PROFILE" = 1 ] && [ "$sys" = node ]; then
    curl -s -o "$raw-cpu.pprof" "http://$EP/debug/pprof/profile?seconds=$PROFILE_SECS" &
    pids[profile]=$!
    curl -s -o "$raw.trace" "http://$EP/debug/pprof/trace?seconds=$PROFILE_SECS" &
    pids[trace]=$!
    sleep 0.1 # both under way before the defragmentation starts
  fi
  echo "  defragmenting a db of $size bytes ($inuse in use, file $fsize)" >&2
  t0=$(date +%s%N)
  "$ETCDCTL" --endpoints "$EP" --command-timeout 30m defrag > "$raw-defrag.txt" 2>&1 || rc=$?
  t1=$(date +%s%N)
  sleep "$POST"
  kill "${pids[probe]}"
  wait "${pids[probe]}" || { echo "the probe failed" >&2; rc=1; }
  unset 'pids[probe]'
  for p in profile trace; do
    if [ -n "${pids[$p]:-}" ]; then wait "${pids[$p]}" || true; unset "pids[$p]"; fi
  done
  read -r rev asize ainuse <<< "$(status)"
  afsize=$(stat -c %s "$DB")
  "$DEFRAGPROBE" report --log "$raw-probe.tsv" --from "$t0" --to "$t1" > "$raw-report.json"
  stop_cluster
  cp "$MLOG" "$raw-member.log"
  [ "$rc" = 0 ] || { echo "!! $sys: etcdctl defrag exited $rc:" >&2; cat "$raw-defrag.txt" >&2; }
  python3 - "$rnd" "$sys" "$N" "$fsize" "$afsize" "$size" "$asize" "$inuse" "$ainuse" "$t0" "$t1" "$rc" "$raw-report.json" \
    "$raw-member.log" >> "$results/runs.tsv" <<'PY'
import json, sys
rnd, sysname, n, fsize, afsize, size, asize, inuse, ainuse, t0, t1, rc, rep, mlog = sys.argv[1:]
r = json.load(open(rep))
d, o = r["during"], r["outside"]
# what the member logged of the defragmentation: the node its copy's time
# and the entries it applied again, etcd the time it blocked
note = []
for line in open(mlog, errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("msg") == "defragmented the db":
        note.append("member: took %.3f s, %d entries replayed" % (e["took"], e["entries_replayed"]))
    elif e.get("msg") == "finished defragmenting directory":
        note.append("member: took %s" % e["took"])
    elif e.get("msg") == "defragmentation did not complete":
        note.append("member: " + e.get("error", "defragmentation did not complete"))
print("\t".join(map(str, [rnd, sysname, n, fsize, afsize, "%.3f" % (int(afsize) / int(fsize)), size, asize, inuse, ainuse,
                          "%.3f" % ((int(t1) - int(t0)) / 1e9), d["n"], d["errors"], "%.1f" % d["p50_ms"], "%.1f" % d["p99_ms"],
                          "%.1f" % d["max_ms"], o["n"], o["errors"], "%.1f" % o["p50_ms"], "%.1f" % o["p99_ms"],
                          "%.1f" % o["max_ms"], rc, "; ".join(note)])))
PY
  tail -n 1 "$results/runs.tsv" | cut -f 2- >&2
}

echo "box: $(nproc) cores, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start" | tee "$results/box.txt" >&2
printf 'round\tsystem\tkeys\tfile_before\tfile_after\tfile_ratio\tdb_before\tdb_after\tinuse_before\tinuse_after\tdefrag_s\tn_during\terr_during\tp50_during_ms\tp99_during_ms\tmax_during_ms\tn_outside\terr_outside\tp50_outside_ms\tp99_outside_ms\tmax_outside_ms\trc\tnote\n' > "$results/runs.tsv"
read -r -a systems <<< "$SYSTEMS"
for round in $(seq "$ROUNDS"); do
  order=("${systems[@]}")
  if [ $((round % 2)) = 0 ]; then order=(); for ((i = ${#systems[@]} - 1; i >= 0; i--)); do order+=("${systems[$i]}"); done; fi
  for sys in "${order[@]}"; do
    echo "round $round: $sys, $N keys" >&2
    run "$round" "$sys"
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" | tee -a "$results/box.txt" >&2

python3 - "$results/runs.tsv" <<'PY' | tee "$results/table.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
mib = lambda b: "%.1f MiB" % (int(b) / 2**20)
print("| round | system | keys | file before → after (ratio) | db size before → after (in use before) "
      "| defrag s | probe during: n, p50, p99, max ms | probe outside: n, p50, p99, max ms | errors |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['round']} | {r['system']} | {int(r['keys']):,} | {mib(r['file_before'])} → {mib(r['file_after'])} ({r['file_ratio']}) "
          f"| {mib(r['db_before'])} → {mib(r['db_after'])} ({mib(r['inuse_before'])}) | {r['defrag_s']} "
          f"| {r['n_during']}, {r['p50_during_ms']}, {r['p99_during_ms']}, **{r['max_during_ms']}** "
          f"| {r['n_outside']}, {r['p50_outside_ms']}, {r['p99_outside_ms']}, {r['max_outside_ms']} "
          f"| {int(r['err_during']) + int(r['err_outside'])}{'' if r['rc'] == '0' else ', defrag exit ' + r['rc']} |")
notes = [r for r in rows if r["note"]]
if notes:
    print()
    for r in notes:
        print(f"- round {r['round']}, {r['system']}: {r['note']}")
PY
echo "runs: $results/runs.tsv; per run: $results/raw/" >&2
