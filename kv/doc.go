// Package kv owns the key-value state machine: the kv actor and the bbolt
// db it keeps the state in.
//
// The kv actor (Actor) is the state machine of one node. It takes:
//
//   - client requests from the HTTP API (package httpapi): messages.Put,
//     Delete, Txn, Get, Range, AddMember, PromoteMember, RemoveMember and
//     MembersRequest, each answered with a messages.Result once it is
//     settled, and messages.DigestRequest, answered with a messages.Digest
//     of the applied state;
//   - MsgStorageApply (*raftpb.Message) from the raft actor: committed entries
//     to apply, strictly in index order;
//   - messages.RestoreSnapshot from the wal actor;
//   - messages.ProposalFailed, ReadIndexReady and ReadIndexFailed from the raft
//     actor, which settle waiting requests, and messages.LeaderChanged, on
//     which it proposes again what it has in flight (repropose.go); the
//     apply skips a command whose request id it applied already (dedup.go).
//
// An entry whose content the state machine cannot take is refused as that
// entry's result, alike on every member, never fatal (refuse.go).
//
// It sends messages.Propose, ProposeConfChange, ReadIndex, ApplyConfChange
// and MembersRestored to the raft actor, and hands the apply responses raft
// attached to each MsgStorageApply to Deliver once the entries are applied.
// To the watch hub (Config.Watch) it sends the changes of each apply
// (messages.WatchEvents), then each commit (WatchCommitted) and each state
// replaced by a snapshot (WatchReset), in that order.
//
// The store's revision is the index of the last entry that changed a key;
// each key carries its create and mod revisions and version. Transactions
// (txn.go) and conditional writes are one entry each, decided when
// applied, so every member decides alike; no two writes of one key share
// an entry (batch.go), so a mod_revision names one write. Range reads
// (range.go) read the applied state, or the state at a past revision by
// undoing the history (history.go): the recent changes, bounded, kept in
// the db with the data and read by watchers resuming (State.ReadEvents).
//
// The state lives in one bbolt file (backend.go): each key's record with
// its revisions, the history, the member lists, and the applied index,
// term, revision and ConfState, written in one transaction kept open and
// committed every 100 ms or 10,000 entries (apply.go). OpenState (state.go) brings the db
// level with the log at start. Every SnapshotCount applied entries, or
// 64 MiB of them, the actor commits the db and sends messages.CreateSnapshot
// to the snapshotter; a follower that needs a snapshot gets the db itself,
// streamed from a read transaction (State.SnapshotReader) and saved by
// ReceiveSnapshotDB before raft sees the snapshot.
//
// A write is answered only after its entry is applied here; a linearizable
// read only after a read index is confirmed and applied reaches it. Nothing is
// acknowledged on proposal. Writes that arrive while two of this member's
// proposals are in raft wait and go out together as one batch entry
// (batch.go); each is still answered by its own request id.
//
// Two formats spell entries and snapshots (Config.Format, and the API's,
// which must match it); every member of a cluster uses the same one:
//
//   - FormatNative (the default): a compact binary command per entry
//     (command.go); snapshots carry no data, the db goes with them.
//   - FormatRaftexample: what etcd's contrib/raftexample writes, so that the
//     node can join a cluster of raftexample members (format_raftexample.go):
//     a gob key and value per entry plus our request id, which raftexample
//     ignores; a snapshot that is the JSON of the key-value map, whose
//     members come from its ConfState. There is no delete (a Delete is
//     refused with messages.ErrUnsupported), and keys and values must be
//     valid UTF-8 (ErrInvalidUTF8).
//
// format.go holds the choice; the actor sees a format only through the
// small stateFormat interface.
package kv
