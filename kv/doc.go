// Package kv owns the key-value state machine and the client HTTP API.
//
// The kv actor (Actor) is the state machine of one node. It takes:
//
//   - client requests from the HTTP API (messages.Put, Delete, Get,
//     AddMember, RemoveMember, MembersRequest), each answered with a
//     messages.Result once it is settled, and messages.DigestRequest,
//     answered with a messages.Digest of the applied state;
//   - MsgStorageApply (*raftpb.Message) from the raft actor: committed entries
//     to apply, strictly in index order;
//   - messages.RestoreSnapshot from the wal actor;
//   - messages.ProposalFailed, ReadIndexReady and ReadIndexFailed from the raft
//     actor, which settle waiting requests.
//
// It sends messages.Propose, ProposeConfChange, ReadIndex, ApplyConfChange
// and MembersRestored to the raft actor, and hands the apply responses raft
// attached to each MsgStorageApply to Deliver once the entries are applied.
//
// Every SnapshotCount applied entries it freezes the state (cowMap, which
// copies a piece of the map only when it is next written) and hands the
// frozen view to its child, the snapshot encoder (snapshot_encoder.go). The
// encoder sends messages.CreateSnapshot to the snapshotter, then tells the
// kv actor it is done; one snapshot is encoded at a time. Applies and reads
// go on meanwhile.
//
// A write is answered only after its entry is applied here; a linearizable
// read only after a read index is confirmed and applied reaches it. Nothing is
// acknowledged on proposal. Writes that arrive while two of this member's
// proposals are in raft wait and go out together as one batch entry
// (batch.go); each is still answered by its own request id.
//
// Two formats spell entries and snapshots (Config.Format, and
// HandlerConfig.Format, which must match it); every member of a cluster uses
// the same one:
//
//   - FormatNative (the default): a compact binary command per entry
//     (command.go) and a binary snapshot that also carries the member list
//     and the removed ids (store.go). Keys are the decoded path: /a%20b and
//     /v1/kv/a%20b name "a b".
//   - FormatRaftexample: what etcd's contrib/raftexample writes, so that the
//     node can join a cluster of raftexample members (format_raftexample.go):
//     a gob key and value per entry plus our request id, which raftexample
//     ignores; a snapshot that is the JSON of the key-value map, whose
//     members come from its ConfState. There is no delete (a Delete is
//     refused with messages.ErrUnsupported), keys and values must be valid
//     UTF-8 (ErrInvalidUTF8), and keys are what raftexample would store:
//     the raw request URI of /<key>, and "/"+<escaped rest> for /v1/kv/<rest>.
//
// format.go holds the choice; the actor sees a format only through the
// small stateFormat interface, the HTTP API through apiDialect
// (http_format.go).
package kv
