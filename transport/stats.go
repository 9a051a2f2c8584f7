package transport

import "sync/atomic"

// channel is one of the three ways a message travels to or from a peer.
type channel int

const (
	chanPipeline channel = iota
	chanMsgApp
	chanMessage
	numChannels
)

// channelOf is the channel a stream kind is.
func channelOf(k streamKind) channel {
	if k == streamMsgApp {
		return chanMsgApp
	}
	return chanMessage
}

// ChannelStats counts the messages of one channel of one peer.
type ChannelStats struct {
	Sent     uint64 // written to the peer (a pipeline POST answered 204)
	Received uint64 // delivered to the inbox
	Failed   uint64 // lost to a write or POST that failed
	Dropped  uint64 // refused because the channel's queue was full
}

// PeerStats counts what crossed the wire with one peer since it was added.
type PeerStats struct {
	Pipeline, MsgApp, Message ChannelStats
	// QueueFull counts messages Send refused because the peer's queue was
	// full, before any channel was chosen.
	QueueFull uint64
	// MsgAppFastFrames counts msgappv2 0x01 frames received: MsgApps that
	// rafthttp peers shortened because they continue the previous one.
	MsgAppFastFrames uint64
	// SnapshotsSent counts MsgSnaps the peer acknowledged: by pipeline
	// (also counted in Pipeline.Sent) or with their data by POST
	// /raft/snapshot. SnapshotsReceived counts those from the peer handed
	// to the inbox, by either way.
	SnapshotsSent, SnapshotsReceived uint64
	// SnapshotBytesSent and SnapshotBytesReceived count the state machine
	// data (what follows the MsgSnap) of completed POST /raft/snapshot
	// transfers.
	SnapshotBytesSent, SnapshotBytesReceived uint64
	// SnapshotsFailed counts POST /raft/snapshot transfers that failed,
	// sent or received; SnapshotsDropped counts MsgSnaps refused because
	// one to the peer was still in flight.
	SnapshotsFailed, SnapshotsDropped uint64
}

// peerCounters are a peer's counters, bumped by whichever actor or
// goroutine sees the event.
type peerCounters struct {
	sent, received, failed, dropped           [numChannels]atomic.Uint64
	queueFull, fastFrames                     atomic.Uint64
	snapsSent, snapsReceived, snapsFailed     atomic.Uint64
	snapsDropped, snapBytesSent, snapBytesRcv atomic.Uint64
}

func (c *peerCounters) snapshot() PeerStats {
	ch := func(i channel) ChannelStats {
		return ChannelStats{Sent: c.sent[i].Load(), Received: c.received[i].Load(), Failed: c.failed[i].Load(), Dropped: c.dropped[i].Load()}
	}
	return PeerStats{
		Pipeline:              ch(chanPipeline),
		MsgApp:                ch(chanMsgApp),
		Message:               ch(chanMessage),
		QueueFull:             c.queueFull.Load(),
		MsgAppFastFrames:      c.fastFrames.Load(),
		SnapshotsSent:         c.snapsSent.Load(),
		SnapshotsReceived:     c.snapsReceived.Load(),
		SnapshotBytesSent:     c.snapBytesSent.Load(),
		SnapshotBytesReceived: c.snapBytesRcv.Load(),
		SnapshotsFailed:       c.snapsFailed.Load(),
		SnapshotsDropped:      c.snapsDropped.Load(),
	}
}

// Stats returns the counters of every current peer.
func (t *HTTP) Stats() map[uint64]PeerStats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[uint64]PeerStats, len(t.peers))
	for id, p := range t.peers {
		out[id] = p.stats.snapshot()
	}
	return out
}
