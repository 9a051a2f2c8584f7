// Package faults is the test infrastructure of the fault-injection suite:
// it runs cmd/node processes, injects faults into them and between them
// (kill, pause, network partitions through a proxy in front of each
// member's peer port, a torn WAL tail), drives concurrent clients against
// the cluster, records their history and checks it for linearizability
// with porcupine. The clients also write conditionally (If-Match,
// If-None-Match: *, value compares through /v1/txn), and the model checks
// the revisions the node answers (model.go). Watchers follow each
// member's watch stream through the faults, resuming after the last
// revision they received (watch.go, reading the stream with internal/sse),
// and what they saw is checked against the history: every acknowledged
// write once, in order, the same on every member (check_watch.go). It
// sends and receives no actor messages; it speaks HTTP to the members like
// any client. Only tests import it.
package faults
