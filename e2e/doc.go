// Package e2e tests the node as its users run it: real cmd/node processes on
// 127.0.0.1, talking rafthttp to each other, driven only through the client
// HTTP API, killed with SIGKILL and restarted from their data dirs.
//
// It has no library code; everything lives in _test.go files. The
// processes run through internal/nodeproc, which builds ./cmd/node once;
// TestMain builds etcd's unmodified raftexample from the nested module in
// ../interop/raftexample in the background, for the interop test that
// joins a node of ours to a raftexample cluster.
//
// The tests own processes, not actors, so they send and receive no actor
// messages: each test starts a cluster, speaks HTTP to its members, reads
// their JSON logs, and kills and waits for every process it started.
package e2e
