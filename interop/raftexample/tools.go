//go:build tools

// Package raftexample pins etcd's unmodified contrib/raftexample so that the
// interop tests in ../../e2e can build it with the exact versions in go.sum.
package raftexample

import _ "go.etcd.io/etcd/v3/contrib/raftexample"
