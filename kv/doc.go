// Package kv owns the key-value state machine and the client HTTP API.
//
// The kv actor (Actor) is the state machine of one node. It takes:
//
//   - client requests from the HTTP API (messages.Put, Delete, Get,
//     AddMember, RemoveMember, MembersRequest), each answered with a
//     messages.Result once it is settled;
//   - MsgStorageApply (*raftpb.Message) from the raft actor: committed entries
//     to apply, strictly in index order;
//   - messages.RestoreSnapshot from the wal actor;
//   - messages.ProposalFailed, ReadIndexReady and ReadIndexFailed from the raft
//     actor, which settle waiting requests.
//
// It sends messages.Propose, ProposeConfChange, ReadIndex, ApplyConfChange
// and MembersRestored to the raft actor, messages.CreateSnapshot to the
// snapshotter every SnapshotCount applied entries, and hands the apply
// responses raft attached to each MsgStorageApply to Deliver once the entries
// are applied.
//
// A write is answered only after its entry is applied here; a linearizable
// read only after a read index is confirmed and applied reaches it. Nothing is
// acknowledged on proposal.
package kv
