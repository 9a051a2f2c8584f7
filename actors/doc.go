// Package actors holds the raft core actor and the Node that wires a member's
// actors together.
//
// The raft actor (Raft) is the only owner of a raft.RawNode, configured with
// AsyncStorageWrites: its mailbox is the RawNode's lock. It takes
//
//   - *raftpb.Message: from peers (via the transport) and the local
//     responses released by the wal and kv actors;
//   - messages.Propose, ProposeConfChange and ReadIndex from the kv actor;
//   - messages.ApplyConfChange (a request) and MembersRestored from the kv
//     actor;
//   - messages.ReportUnreachable, ReportSnapshot and MemberRemoved from the
//     transport;
//   - messages.StatusRequest from the HTTP API;
//   - its own tick and flush markers.
//
// It handles every message already queued before it builds a Ready (the flush
// marker, sent once per wave of messages, trails them in the FIFO mailbox), so
// many proposals share one Ready and one WAL write. Each Ready is split into
// fragments: MsgStorageAppend to the wal actor, MsgStorageApply to the kv
// actor, read states to the kv actor, everything else to the transport at
// once. Advance is never called.
//
// Node starts and stops the actors of one member: it replays the data dir
// (package persistence), spawns the wal, snapshotter, kv and raft actors in
// one actor system, and turns a panic or a fatal error in any of them into a
// stop of the whole member, never a restart with empty state.
package actors
