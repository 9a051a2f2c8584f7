package messages

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Propose asks raft to replicate an encoded command.
// Sender: kv actor. Receiver: raft actor.
// If raft refuses it, the raft actor answers the sender with ProposalFailed;
// otherwise the outcome is learnt when the entry is applied (or never).
type Propose struct {
	ID   uint64 // the kv actor's request id, echoed in ProposalFailed
	Data []byte
}

// ProposeConfChange asks raft to replicate a membership change.
// Sender: kv actor. Receiver: raft actor. Failure is reported as for Propose.
type ProposeConfChange struct {
	ID     uint64
	Change *raftpb.ConfChange
}

// ProposalFailed reports that raft refused a Propose or ProposeConfChange.
// Sender: raft actor. Receiver: kv actor.
type ProposalFailed struct {
	ID  uint64
	Err error // ErrNoLeader or ErrProposalDropped
}

// LeaderChanged tells the kv actor that raft now knows a leader, Leader
// (this member or another), in Term: sent each time raft's leader changes
// to a member, from none (after an election) or from another member; not
// when it changes to none. A proposal a follower forwarded to the previous
// leader may have been lost with it without a word; the kv actor proposes
// again every proposal in flight it made under another leadership (the
// state machine applies a command once, however often the log holds it).
// Sender: raft actor, from the Ready whose SoftState names the leader.
// Receiver: kv actor.
// Order: it is sent once the RawNode knows the leader, so the proposals
// the kv actor sends back after it are placed with that leader, not held
// or forwarded to the one gone; and after the Ready's committed entries
// (MsgStorageApply), so that the kv actor applies those first and does not
// propose again what they settle (a copy would only be skipped).
type LeaderChanged struct {
	Leader uint64
	Term   uint64
}

// ReadIndex asks for a linearizable read point for request ID.
// Sender: kv actor. Receiver: raft actor. The raft actor batches every
// ReadIndex it has queued into one raft read-index round and answers with
// ReadIndexReady or ReadIndexFailed.
type ReadIndex struct {
	ID uint64
}

// ReadIndexReady tells the kv actor that requests IDs may be served once the
// state machine has applied Index.
// Sender: raft actor. Receiver: kv actor.
type ReadIndexReady struct {
	IDs   []uint64
	Index uint64
}

// ReadIndexFailed tells the kv actor that requests IDs cannot be served.
// Sender: raft actor. Receiver: kv actor.
type ReadIndexFailed struct {
	IDs []uint64
	Err error
}

// ApplyConfChange hands a committed membership change to the raft actor,
// which applies it to the RawNode and to the transport (PeerURL is the added
// member's peer URL, empty for a removal).
// Sender: kv actor, with RequestFuture, while applying the entry at Index.
// Receiver: raft actor, which responds with ConfChangeApplied. The kv actor
// waits for the answer before it applies the next entry, so its snapshots
// always carry the ConfState that matches their index.
type ApplyConfChange struct {
	Index   uint64
	Change  raftpb.ConfChangeI
	PeerURL string
}

// ConfChangeApplied answers ApplyConfChange. Err (wrapping
// ErrConfChangeDeclined) says the raft actor declined a change that does not
// fit the configuration; ConfState is then the unchanged one, and the state
// machine leaves its member list as it is.
// Sender: raft actor. Receiver: kv actor.
type ConfChangeApplied struct {
	ConfState *raftpb.ConfState
	Err       error
}

// MembersRestored gives the raft actor the full member list after the kv
// actor restored a snapshot received from the leader, so the transport can
// reach members whose conf change entries were compacted away, and refuse
// those removed.
// Sender: kv actor. Receiver: raft actor.
type MembersRestored struct {
	Members map[uint64]string // id → peer URL
	Removed []uint64          // ids removed from the cluster
}

// ReportUnreachable tells raft that a message to peer ID could not be sent.
// Sender: transport. Receiver: raft actor.
type ReportUnreachable struct {
	ID uint64
}

// ReportSnapshot tells raft how sending a MsgSnap to peer ID ended.
// Sender: transport. Receiver: raft actor.
type ReportSnapshot struct {
	ID     uint64
	Status raft.SnapshotStatus
}

// TransferLeadership asks the raft actor to move leadership to member To,
// or, with To 0 on the leader, to the voter whose log is the most complete.
// Sender: the HTTP API or the node stopping (RequestFuture). Receiver: raft
// actor, which answers LeadershipTransferred once a leader other than the
// old one is elected and it is To, or once an election timeout has passed.
// raft drops proposals on a leader that is handing over; the raft actor
// holds them instead and places them with the new leader.
type TransferLeadership struct {
	To uint64
}

// LeadershipTransferred answers TransferLeadership. Err is nil when Leader
// is the member asked for.
type LeadershipTransferred struct {
	Leader uint64
	Err    error
}

// DrainForwarded asks the raft actor to answer ForwardingDrained once no
// peer has forwarded it a proposal or a read for Quiet. A leader that has
// handed leadership over waits for it before it stops: followers that have
// not yet heard of the new leader still forward to it, and it passes their
// requests on, where a stopped member would lose them.
// Sender: the node stopping (RequestFuture, which bounds the wait).
// Receiver: raft actor.
type DrainForwarded struct {
	Quiet time.Duration
}

// ForwardingDrained answers DrainForwarded.
type ForwardingDrained struct{}

// StatusRequest asks the raft actor for a Status.
// Sender: HTTP API (RequestFuture). Receiver: raft actor.
type StatusRequest struct{}

// Status describes the node as its raft actor sees it.
// Sender: raft actor. Receiver: the requester.
type Status struct {
	ID        uint64            `json:"id"`
	Leader    uint64            `json:"leader"`
	Term      uint64            `json:"term"`
	RaftState string            `json:"raft_state"`
	Commit    uint64            `json:"commit_index"`
	Applied   uint64            `json:"applied_index"`
	Members   map[uint64]string `json:"members"`  // id → peer URL
	Learners  []uint64          `json:"learners"` // members that do not vote
}

// MemberRemoved tells the raft actor that peer By refused a message because
// it removed this member from the cluster: the member must stop.
// Sender: transport. Receiver: raft actor.
type MemberRemoved struct {
	By uint64
}

// Tick moves raft's logical clock one tick.
// Sender: a test driving a member started with a manual clock
// (actors.NodeConfig.ManualTick). Receiver: raft actor. Without a manual
// clock the raft actor ticks on its own timer, and a Tick adds one tick.
type Tick struct{}

// AppliedStateRequest asks the kv actor for the index it applied and the
// configuration as of it, which a raft actor rebuilt after a panic starts
// its RawNode at (actors/raft_rebuild.go). Every response to an apply the
// kv actor sent before it answers reaches the raft actor first: one
// sender, one mailbox.
// Sender: raft actor, once per rebuild. Receiver: kv actor.
type AppliedStateRequest struct{}

// AppliedState answers AppliedStateRequest.
type AppliedState struct {
	Index     uint64
	ConfState *raftpb.ConfState
}
