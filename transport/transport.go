package transport

import (
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Transport sends raft messages to other members.
type Transport interface {
	// Send hands messages to their peers. It never blocks: a message that
	// cannot be sent is dropped and reported to the Inbox as unreachable.
	// The transport owns msgs after the call.
	Send(msgs []*raftpb.Message)
	// AddPeer makes member id reachable at peerURL. Adding a known peer
	// updates its URL.
	AddPeer(id uint64, peerURL string)
	// RemovePeer forgets member id; later messages from it are refused as
	// coming from a removed member.
	RemovePeer(id uint64)
	// ActiveSince is when member id became reachable for this member, the
	// zero time while it is not: the strict reconfiguration check counts
	// the members that are up.
	ActiveSince(id uint64) time.Time
	// Close stops the transport. Closing twice is safe.
	Close() error
}

// Inbox receives what a transport delivers to the local member. It must not
// block; the node's inbox posts into the raft actor's mailbox.
type Inbox func(msg any)
