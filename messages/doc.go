// Package messages defines every message the node's actors exchange, and the
// sentinel errors they carry.
//
// The actors of one node are:
//
//   - the raft actor (package actors): owns the raft.RawNode;
//   - the wal actor (package persistence): owns the write-ahead log;
//   - the snapshotter actor (package persistence): owns the snapshot directory;
//   - the kv actor (package kv): owns the key-value state machine and every
//     client request that waits on it.
//
// raft's own messages travel as *raftpb.Message: MsgStorageAppend from the raft
// actor to the wal actor, MsgStorageApply from the raft actor to the kv actor,
// and their responses (and every network message) back to the raft actor or
// out to the transport. The types here cover everything else. Each type says
// who sends it and who receives it.
//
// Messages are values owned by the receiver once sent: a sender must not touch
// a message, or the slices and maps inside it, after sending it.
package messages
