// Package store owns the replicated state of one member, in the db of
// package backend: each key's record with its revisions, the history of
// recent changes, range reads (at the current or a past revision),
// transactions, the member lists, the leases and the keys attached to each
// (lease.go), the request ids applied lately (dedup.go) and the applied
// index, term and ConfState, written in the same batch transaction as the
// data they describe. It is etcd's mvcc store and
// membership store in one, and, like them, knows nothing of raft entries,
// actors or clients: the applier (package apply) turns entries into its
// operations, and the kv actor (package kv) owns it.
//
// The store's revision is the index of the last entry that changed a key;
// each key carries its create and mod revisions and version. Every write
// records its change in the history (history.go), bounded by size and
// by compaction entries (Compact); it serves watchers resuming
// (ReadEvents) and reads of a past revision, which undo the changes made
// since (range.go). The changes made since the owner last asked
// (TakeEvents) go to the watch hub.
//
// A Store is used by one goroutine, its owner's, except SnapshotReader and
// ReadEvents, which read the last commit in read transactions of their own.
package store
