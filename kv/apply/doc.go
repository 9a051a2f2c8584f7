// Package apply owns what a log entry means: how commands are spelt in
// entries (command.go, batch.go, txn.go, and the two formats, format.go and
// format_raftexample.go), what is refused before a write is proposed
// (propose.go, refuse.go), and how a committed entry becomes operations on
// the store (applier.go), as etcd's etcdserver/apply does. Leases
// (lease.go) are granted, revoked and checkpointed by entries like any
// write; their deadlines are the kv actor's. A compaction of the history
// (compact.go) is an entry too, so that every member compacts at the same
// point of the log.
//
// Applying is total: what an entry holds can make the applier refuse it,
// never fail. An entry or command that does not decode, or that the db
// cannot hold, changes nothing but the applied index, and its client hears
// messages.ErrEntryRefused with the reason; whether an entry is refused
// depends on its bytes alone, so every member refuses the same ones. Only
// the db's own errors come back as errors, and stop the member.
//
// The Applier's writes go through a chain of writers (applier.go): the
// store's own operations, wrapped by the space quota (quota.go) when one is
// set, as etcd's quota applier wraps its applier. Each command is applied at
// most once: the store's dedup records say whether its request id was
// applied before.
//
// Two formats spell entries and snapshots (Format), and every member of a
// cluster uses the same one:
//
//   - FormatNative (the default): a compact binary command per entry, or a
//     batch of them; snapshots carry no data, the db goes with them.
//   - FormatRaftexample: what etcd's contrib/raftexample writes, so that the
//     node can join a cluster of raftexample members: a gob key and value
//     per entry plus our request id, which raftexample ignores; a snapshot
//     that is the JSON of the key-value map, whose members come from its
//     ConfState. There is no delete, no lease, no transaction and no
//     compaction (messages.ErrUnsupported), and keys and values must be
//     valid UTF-8 (ErrInvalidUTF8).
//
// The package holds no state of its own between entries and sends no
// messages: the kv actor owns an Applier and settles its requests with the
// Outcomes each call returns.
package apply
