#!/usr/bin/env bash
# Makes the data dir of a one-member cluster with cmd/node as it was at
# COMMIT, and packs it into OUT (a .tgz): the fixture with which
# e2e/version_test.go checks that the current binary upgrades a data dir an
# older release wrote. The member writes keys that the test reads back:
#
#   fixture/k01 .. fixture/k20 = v01 .. v20, then fixture/k01 = v01b, then
#   fixture/k20 deleted
#
# with --snapshot-count 10, so that the dir holds a snapshot as well as a
# WAL. Its peer URL is http://127.0.0.1:31379, its client port 31380 (both
# must be free): the cluster id derives from the peer URL, so the same
# ports give the same id on every run, and the script prints it. The
# build uses a `git worktree` of COMMIT in a temporary directory, removed
# on exit; the working tree is not touched.
#
#   scripts/make-datadir-fixture.sh c82f4ab e2e/testdata/datadir-c82f4ab.tgz
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 COMMIT OUT.tgz" >&2
  exit 2
fi
commit=$1
out=$(realpath -m "$2")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
tree=$work/tree
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  git -C "$repo" worktree remove --force "$tree" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

git -C "$repo" worktree add -q --detach "$tree" "$commit" >/dev/null
(cd "$tree" && go build -o "$work/node" ./cmd/node)
git -C "$repo" worktree remove --force "$tree"

peer=http://127.0.0.1:31379
api=http://127.0.0.1:31380
(cd "$work" && exec ./node --cluster "$peer" --port 31380 --data-dir node-1 --snapshot-count 10 > node.log 2>&1) &
pid=$!
for _ in $(seq 200); do
  curl -sf "$api/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { echo "the node exited; its log:" >&2; cat "$work/node.log" >&2; exit 1; }
  sleep 0.1
done
curl -sf "$api/healthz" >/dev/null || { echo "the node did not become healthy" >&2; exit 1; }

put() { curl -sf -XPUT --data-binary "$2" "$api/v1/kv/$1" >/dev/null; }
for i in $(seq -w 1 20); do put "fixture/k$i" "v$i"; done
put fixture/k01 v01b
curl -sf -XDELETE "$api/v1/kv/fixture/k20" >/dev/null

kill -TERM "$pid"
wait "$pid"
pid=
ls "$work"/node-1/snap/*.snap >/dev/null || { echo "no snapshot was taken" >&2; exit 1; }
# Reproducible: no owners, times or order of the machine that made it.
tar -C "$work" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
  --exclude=node-1/lock -cf - node-1 | gzip -9n > "$out"
echo "cluster id: $(grep -o '"cluster_id":"[0-9a-f]*"' "$work/node.log" | head -1 | cut -d'"' -f4)"
echo "$out: $(stat -c %s "$out") bytes"
