package transport

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// peerActor is one remote member. It picks a channel for each message and
// hands it to the child that owns the channel: the pipeline, or the writer
// of the msgappv2 or message stream. Its other two children, the stream
// readers, dial the peer for what it sends us. Stopping it stops them all.
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
}

func newPeerActor(t *HTTP, p *peerRef, url string) *peerActor {
	return &peerActor{t: t, peer: p, url: url}
}

// Receive implements actor.Actor.
func (a *peerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.spawnChildren(ctx)
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
			for _, r := range a.readers {
				ctx.Send(r, m)
			}
			a.t.lg.Info("peer URL changed", zap.String("peer", formatID(a.peer.id)), zap.String("url", m.url))
		}
	}
}

func (a *peerActor) spawnChildren(ctx actor.Context) {
	a.pipeline = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return newPipeline(a.t, a.peer, a.url, &a.pipelineQueued)
	}))
	for _, k := range []streamKind{streamMsgApp, streamMessage} {
		a.writers[k] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newStreamWriter(a.t, a.peer, k) }))
		a.readers[k] = ctx.Spawn(actor.PropsFromProducer(func() actor.Actor { return newStreamReader(a.t, a.peer, k, a.url) }))
	}
}

// send picks the channel as rafthttp does: a snapshot always by pipeline (a
// large one would hold up a stream for its whole transfer), MsgApp by the
// msgappv2 stream, anything by the message stream, and the pipeline when no
// stream is attached.
func (a *peerActor) send(ctx actor.Context, m *raftpb.Message) {
	switch {
	case m.GetType() == raftpb.MsgApp && a.up[streamMsgApp]:
		ctx.Send(a.writers[streamMsgApp], m)
	case m.GetType() != raftpb.MsgSnap && a.up[streamMessage]:
		ctx.Send(a.writers[streamMessage], m)
	default:
		if a.pipelineQueued.Add(1) > a.t.pipelineSize {
			a.pipelineQueued.Add(-1)
			a.peer.queued.Add(-1)
			a.peer.stats.dropped[chanPipeline].Add(1)
			a.t.lg.Debug("dropped a message: the pipeline is full", zap.String("peer", formatID(a.peer.id)), zap.Stringer("type", m.GetType()))
			a.t.unreachable(m)
			return
		}
		ctx.Send(a.pipeline, m)
	}
}
