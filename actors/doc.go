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
//   - messages.SnapshotLoaded from the snapshotter: its answer to the
//     LoadSnapshot its storage (persistence.SnapStorage) asked from inside
//     raft, which the actor hands back to the storage, so that the storage
//     is only ever touched on this actor's goroutine;
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
// (package persistence) and spawns the wal, snapshotter, watch, kv and raft
// actors in one actor system, each on a goroutine of its own that lives as
// long as the member (dispatcher.go), rather than protoactor's new goroutine
// per mailbox run. A fatal error in any of them (a failed write)
// stops the whole member. A panic costs what supervision.go's table says:
//
//	actor        on a panic                      rebuilt from
//	wal          the member stops (exit 1)       never: an fsync that failed cannot be retried safely
//	raft         rebuilt in place                the hard state and log, at the kv actor's applied index
//	kv           rebuilt in place                the db at its last commit, then the log after it
//	watch        rebuilt in place                the revision it knew; watches resume from the history
//	snapshotter  restarted                       its config; a snapshot in progress is abandoned
//	peers        restarted (package transport)   fresh connections; what was queued is dropped
//
// An actor restarted more than 3 times in 30 s stops the member instead,
// naming it; no actor is ever restarted with an empty state it would
// serve from.
package actors
