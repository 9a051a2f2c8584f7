// Package transport carries raft messages between the members of a cluster.
//
// A Transport takes the raft actor's outgoing messages (and the responses the
// wal and kv actors release after their writes) and never blocks its caller:
// a message it cannot send is dropped and reported. What it receives for the
// local member it hands to an Inbox, which posts into the raft actor's
// mailbox: *raftpb.Message, messages.ReportUnreachable,
// messages.ReportSnapshot, and messages.MemberRemoved when a peer says this
// member was removed from the cluster.
//
// HTTP is the network transport, wire-compatible with etcd's rafthttp (see
// wire.go), so that members of ours and etcd raftexample members form one
// cluster. Each peer is an actor (peer.go) that picks the channel for each
// message and hands it to its children: the pipeline sender (one POST
// /raft per message), the msgappv2 and message stream writers (which write
// into the endless responses of the streams the peer opened to us), the
// snapshot sender, and two stream readers, which dial the peer for what it
// sends us. A bounded queue per peer keeps Send from ever waiting: what
// does not fit is dropped and reported unreachable. Handler serves the
// peer endpoints; Stats counts what crossed the wire, per peer and
// channel, for the metrics.
//
// The transport supervises its peer actors (supervise.go). A panic in a
// peer actor, in one of its children or on a stream reader's goroutine
// restarts the peer actor in place, with new children and new
// connections; what its children held is dropped and reported unreachable,
// as any lost message is, and raft sends again. The peer's bookkeeping
// (its queue count, its URL, its entry in the transport's map, which keeps
// the actor's PID) lives in one peerRef that outlives the restarts. A peer
// actor that panics more than 3 times within 30 s stops the member through
// HTTPConfig.Fatal.
//
// A MsgSnap goes one of two ways. Without a SnapshotSource it carries the
// state machine in its Data and goes by pipeline, as in raftexample. With
// one (a state machine in a db file, as etcd's), the MsgSnap carries only
// metadata and goes by POST /raft/snapshot, as rafthttp's snapshot sender
// sends it: the message framed as on the message stream, then the data the
// source opens, streamed and never held whole in memory on either side.
// The receiver's SnapshotSink saves the data as it arrives, and the
// MsgSnap reaches the inbox only once the sink has made it durable; the
// sender then reports SnapshotFinish, or on any failure ReportUnreachable
// and SnapshotFailure. One transfer per peer is in flight at a time; each
// read and write has its own deadline, so a transfer that keeps moving
// takes as long as it needs and one that stalls ends within seconds.
//
// Network is an in-memory transport for running whole clusters in one
// process: it can cut links (one way or both), isolate members and drop
// chosen message types, so cluster tests decide exactly which messages are
// lost. Members that join with a SnapshotSource and a SnapshotSink
// (JoinWith) pass snapshot data from one to the other as HTTP does.
package transport
