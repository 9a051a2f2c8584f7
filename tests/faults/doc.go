// Package faults is the fault-injection suite and its infrastructure: it
// runs cmd/node processes (through internal/nodeproc, which builds the
// binary once), injects faults into them and between them
// (kill, pause, network partitions through a proxy in front of each
// member's peer port, a torn WAL tail), drives concurrent clients against
// the cluster, records their history and checks it for linearizability
// with porcupine. The clients also write conditionally (If-Match,
// If-None-Match: *, value compares through /v1/txn), and the model checks
// the revisions the node answers (model.go). A few of their operations
// (Workers.OddKeys; one in 25 in the fault schedule) go to odd keys: keys
// with slashes, empty segments, dot and dot-dot segments, spaces, percent
// signs, bytes that are not UTF-8, and one of exactly the 8 KiB limit
// (messages.MaxKeyBytes), percent-encoded in the URL, which are keys of
// the round like the others (read back byte for byte, checked by the
// model, the final reads and the watchers); and writes of keys no write
// may carry (empty, one byte over the limit, over bbolt's 32,768 bytes),
// which must be refused with a 400 or a 413 whose body does not echo the
// key: they are recorded as failed writes, never part of the model, and a
// write of one that is acknowledged, or answered otherwise (but for a 503
// or a 504, which a fault explains), fails the round (ErrBadRefusal).
// Since those keys start with the round's prefix, a watcher that sees one
// written fails the round too.
//
// Watchers follow each member's watch stream through the faults, resuming
// after the last revision they received (watch.go, reading the stream with
// internal/sse), and what they saw is checked against the history: every
// acknowledged write once, in order, the same on every member
// (check_watch.go). It sends and receives no actor messages; it speaks
// HTTP to the members like any client. Its non-test files are the suite's
// support (Member, Net, Workers, Recorder, Watcher, the checks), each
// tested by its own _test file; schedule_test.go runs the suite. Nothing
// else imports it.
package faults
