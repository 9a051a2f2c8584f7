// Package faults is the fault-injection suite and its infrastructure: it
// runs cmd/node processes (through internal/nodeproc, which builds the
// binary once, with its failpoints when gofail can be fetched), injects
// faults into them and between them (kill, pause, network partitions
// through a proxy in front of each member's peer port, a torn WAL tail,
// and through failpoints an actor's panic or a crash at a durable step:
// failpoint_faults_test.go), drives concurrent clients against
// the cluster, records their history and checks it for linearizability
// with porcupine. Some clients (Workers.GRPC) speak etcd's v3 gRPC API on
// the same client URLs instead (grpc_client.go: KV.Range, Put,
// DeleteRange, and Txn for the conditional writes), recorded as the same
// operations, so that one model checks both doors together. The clients
// also write conditionally (If-Match,
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
// Lease clients (lease.go) run beside the others through every fault: each
// grants a lease of 3 to 5 s under an id of its own, attaches 1 to 3 keys
// of its own to it (PUT ?lease=, keys under r<n>-L), keeps it alive every
// TTL/3 (trying 503s, 504s and silence again; only a 404 means gone),
// reads its keys every 300 ms with a range read, and after 1 to 3 TTLs
// stops on purpose and starts over. After each round, once every member
// has revoked the round's leases (settling: no member lists one, each
// answers 404 for each, none holds a key of theirs), CheckLeases
// (check_lease.go) holds what the clients and the watchers saw to the
// lease contract: no lease went (a keep-alive or put answered 404, a
// read without an acknowledged key, a watcher's delete) before its
// holder's horizon, the send time of its last keep-alive answered in time
// plus the TTL; a stopped lease went within its TTL, an election timeout,
// the lessor's 500 ms tick and the part of the fault windows (injection
// to recovery) after its holder stopped; its keys went at one revision,
// the same on every member, none surviving it, and no range read saw
// some of them without the others. The revocations then join the history
// as OpRevoke operations, one per key, so that the model (model.go) knows
// a leased key is absent once its lease's revocation applied, and a put
// naming a revoked lease writes nothing; the digests every member must
// agree on cover the keys with their leases and the lease table.
//
// Watchers follow each member's watch stream through the faults, resuming
// after the last revision they received (watch.go, reading the stream with
// internal/sse; grpc_watch.go, etcd's gRPC Watch with start_revision the
// next revision; a compacted answer, a 410 or compact_revision, fails the
// round), and what they saw is checked against the history: every
// acknowledged write once, in order, the same on every member and through
// either door (check_watch.go). It sends and receives no actor
// messages; it speaks HTTP and gRPC to the members like any client. Its
// non-test files are the suite's support (Member, Net, Workers, Recorder,
// Watcher, GRPCWatcher, the checks), each tested by its own _test file
// (grpc_member_test.go runs both doors against a real member);
// schedule_test.go runs the suite. Nothing else imports it.
package faults
