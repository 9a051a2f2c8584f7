//go:build tools

// Package raftexample pins etcd v3.6's unmodified tools so that the tests
// and scripts of the root module can build them with the exact versions in
// go.sum: contrib/raftexample (the interop tests in ../../e2e), etcdctl
// (the etcd client tests), and etcd itself with its benchmark tool (the
// side-by-side benchmarks, scripts/etcd-bench.sh).
package raftexample

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
	_ "go.etcd.io/etcd/v3/contrib/raftexample"
	_ "go.etcd.io/etcd/v3/tools/benchmark"
)
