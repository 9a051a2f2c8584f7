# The plumbing the benchmark scripts share: a work dir removed on exit, the
# binaries, and a three-member cluster on raftexample's ports (peers 12379,
# 22379, 32379; clients 12380, 22380, 32380) with its data in $work/data.
# A script sources it, then (a binary named raftexample* is etcd's
# raftexample, started and awaited as it needs):
#
#   build "$1"        builds cmd/bench into $bench, and cmd/node into $bin
#                     unless $1 names a node binary
#   start_cluster [b] stops any cluster, starts three fresh members of
#                     binary b ($bin), and returns once a write went through
#   start_member i [b] starts member i on its data dir (to restart it)
#   stop_cluster      stops every member; pids[i] is member i's process
#
# $C is the cluster's peer URLs, $E its client endpoints.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
C=http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379
E=http://127.0.0.1:12380,http://127.0.0.1:22380,http://127.0.0.1:32380
work=$(mktemp -d)
declare -A pids=()

stop_cluster() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_cluster; rm -rf "$work"' EXIT

build() {
  bin=${1:-}
  if [ -z "$bin" ]; then
    (cd "$repo" && go build -o "$work/node" ./cmd/node)
    bin=$work/node
  fi
  (cd "$repo" && go build -o "$work/bench" ./cmd/bench)
  bench=$work/bench
}

# etcd's raftexample (built from interop/raftexample) takes the same --id,
# --cluster and --port, and no other flag; it serves PUT on any path, which
# it takes as the key, and has no /healthz.
is_raftexample() { case "$(basename "$1")" in raftexample*) return 0 ;; esac; return 1; }

start_member() {
  local b=${2:-$bin} extra=(--log-level warn)
  if is_raftexample "$b"; then extra=(); fi
  (cd "$work/data" && exec "$b" --id "$1" --cluster $C --port "${1}2380" "${extra[@]}" >> "node$1.log" 2>&1) &
  pids[$1]=$!
}

start_cluster() {
  stop_cluster
  rm -rf "$work/data" && mkdir "$work/data"
  for i in 1 2 3; do start_member $i "${1:-$bin}"; done
  for _ in $(seq 200); do
    if is_raftexample "${1:-$bin}"; then
      curl -sf -XPUT -d x http://127.0.0.1:12380/v1/kv/warm >/dev/null 2>&1 && return
      sleep 0.1
      continue
    fi
    curl -sf http://127.0.0.1:22380/healthz >/dev/null 2>&1 && curl -sf http://127.0.0.1:32380/healthz >/dev/null 2>&1 &&
      curl -sf -XPUT -d x http://127.0.0.1:12380/v1/kv/warm >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the cluster did not start; the ends of its logs:" >&2
  tail -n 3 "$work"/data/node*.log >&2
  exit 1
}
