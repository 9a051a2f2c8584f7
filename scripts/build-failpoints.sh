#!/usr/bin/env bash
# Builds cmd/node with its failpoints compiled in, into OUTPUT:
#
#   scripts/build-failpoints.sh OUTPUT
#
# The failpoints are `// gofail: var name struct{}` comments, which a normal
# build ignores. `gofail enable` turns them into code in place, so this
# rewrites a copy of the packages cmd/node is built from, never the working
# tree (others may be editing it), and removes the copy when done. gofail is
# the version go.mod pins (its `tool` line); a fresh machine needs only Go
# and the Go module proxy. The binary opens gofail's HTTP endpoint when
# GOFAIL_HTTP=host:port is set, and takes GOFAIL_FAILPOINTS='name=term;...'
# at start: see the README's Failpoints section.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTPUT" >&2
  exit 2
fi
case $1 in
  /*) out=$1 ;;
  *) out=$PWD/$1 ;;
esac
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-failpoints-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The copy holds go.mod, go.sum and every package of this module that
# cmd/node is built from (files only: a package's subdirectories are other
# packages, listed on their own), so uncommitted work in the tree is built
# as it is, and binaries and test data are left behind.
cp go.mod go.sum "$tmp/"
root=$(go list -m -f '{{.Dir}}')
go list -deps -f '{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}' ./cmd/node |
  while IFS= read -r dir; do
    case $dir in
      "$root") rel=. ;;
      "$root"/*) rel=${dir#"$root"/} ;;
      *) echo "$0: package directory $dir is outside the module at $root" >&2; exit 1 ;;
    esac
    mkdir -p "$tmp/$rel"
    find "$dir" -maxdepth 1 -type f -exec cp {} "$tmp/$rel/" \;
  done

# gofail enable takes the files that hold failpoints; it writes a
# <file>.fail.go beside each, which imports gofail's runtime and names its
# package after the directory: a failpoint can live only in a package named
# as its directory is (not in package main).
files=$(cd "$tmp" && grep -rl --include='*.go' --exclude='*_test.go' -E '^[[:space:]]*// gofail: var ' . || true)
if [ -z "$files" ]; then
  echo "$0: no failpoints found in the packages of cmd/node" >&2
  exit 1
fi
# shellcheck disable=SC2086 # one path per word: none holds a space
(cd "$tmp" && go tool gofail enable $files)

# The same flags as a plain `go build`, so that the dependencies come from
# the build cache the normal builds fill.
(cd "$tmp" && go build -o "$out" ./cmd/node)
