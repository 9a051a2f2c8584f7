package transport

import (
	"context"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// peerActor is one remote member. It picks a channel for each message and
// hands it to the child that owns the channel: the pipeline, the writer of
// the msgappv2 or message stream, or (with a SnapshotSource) the snapshot
// sender. Its other two children, the stream readers, dial the peer for
// what it sends us. Stopping it stops them all, and ends a snapshot
// transfer in flight.
type peerActor struct {
	t    *HTTP
	peer *peerRef
	url  string

	pipeline *actor.PID
	writers  [2]*actor.PID // by streamKind
	readers  [2]*actor.PID
	up       [2]bool // whether each stream is attached
	// pipelineQueued bounds what waits for the pipeline, which is slow: one
	// POST per message.
	pipelineQueued atomic.Int64

	// snapshots is the snapshot sender, nil without a SnapshotSource.
	// snapshotBusy is set while it has a MsgSnap: one transfer at a time.
	snapshots     *actor.PID
	snapshotBusy  atomic.Bool
	stopSnapshots context.CancelFunc
}

func newPeerActor(t *HTTP, p *peerRef, url string) *peerActor {
	return &peerActor{t: t, peer: p, url: url}
}

// Receive implements actor.Actor.
func (a *peerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.spawnChildren(ctx)
	case *actor.Stopping:
		// A transfer blocks its actor, which would stop only at its end.
		if a.stopSnapshots != nil {
			a.stopSnapshots()
		}
	case *raftpb.Message:
		a.send(ctx, m)
	case attachStream:
		ctx.Send(a.writers[m.conn.kind], m)
	case detachStream:
		ctx.Send(a.writers[m.conn.kind], m)
	case streamState:
		a.up[m.kind] = m.up
	case peerURLChanged:
		if m.url != a.url {
			a.url = m.url
			ctx.Send(a.pipeline, m)
			if a.snapshots != nil {
				ctx.Send(a.snapshots, m)
			}
			for _, r := range a.readers {
				ctx.Send(r, m)
			}
			a.t.lg.Info("peer URL changed", zap.Uint64("peer", a.peer.id), zap.String("url", m.url))
		}
	}
}

func (a *peerActor) spawnChildren(ctx actor.Context) {
	a.pipeline = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newPipeline(a.t, a.peer, a.url, &a.pipelineQueued)
	}))
	if a.t.cfg.SnapshotSource != nil {
		sctx, cancel := context.WithCancel(a.t.ctx)
		a.stopSnapshots = cancel
		a.snapshots = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return newSnapshotSender(sctx, a.t, a.peer, a.url, &a.snapshotBusy)
		}))
	}
	for _, k := range []streamKind{streamMsgApp, streamMessage} {
		a.writers[k] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newStreamWriter(a.t, a.peer, k) }))
		a.readers[k] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newStreamReader(a.t, a.peer, k, a.url) }))
	}
}

// send picks the channel as rafthttp does: a snapshot by the snapshot
// sender with its data, or else by pipeline (a large one would hold up a
// stream for its whole transfer), MsgApp by the msgappv2 stream, anything by
// the message stream, and the pipeline when no stream is attached.
func (a *peerActor) send(ctx actor.Context, m *raftpb.Message) {
	switch {
	case m.GetType() == raftpb.MsgSnap && a.snapshots != nil:
		a.sendSnapshot(ctx, m)
	case m.GetType() == raftpb.MsgApp && a.up[streamMsgApp]:
		ctx.Send(a.writers[streamMsgApp], m)
	case m.GetType() != raftpb.MsgSnap && a.up[streamMessage]:
		ctx.Send(a.writers[streamMessage], m)
	default:
		if a.pipelineQueued.Add(1) > a.t.pipelineSize {
			a.pipelineQueued.Add(-1)
			a.peer.queued.Add(-1)
			a.peer.stats.dropped[chanPipeline].Add(1)
			a.t.lg.Debug("dropped a message: the pipeline is full", zap.Uint64("peer", a.peer.id), zap.Stringer("type", m.GetType()))
			a.t.unreachable(m)
			return
		}
		ctx.Send(a.pipeline, m)
	}
}

// sendSnapshot hands m to the snapshot sender unless a transfer is in
// flight: raft sends one MsgSnap at a time, and one that comes anyway is
// dropped and reported failed rather than queued behind a long transfer.
func (a *peerActor) sendSnapshot(ctx actor.Context, m *raftpb.Message) {
	if !a.snapshotBusy.CompareAndSwap(false, true) {
		a.peer.queued.Add(-1)
		a.peer.stats.snapsDropped.Add(1)
		a.t.lg.Warn("dropped a snapshot", zap.Uint64("peer", a.peer.id),
			zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()), zap.Error(ErrSnapshotInFlight))
		a.t.unreachable(m)
		return
	}
	ctx.Send(a.snapshots, m)
}
