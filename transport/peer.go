package transport

import (
	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// peerActor is one life of the actor of one remote member. It picks a
// channel for each message and hands it to the child that owns the
// channel: the pipeline, the writer of the msgappv2 or message stream, or
// (with a SnapshotSource) the snapshot sender. Its other two children, the
// stream readers, dial the peer for what it sends us. Stopping it stops
// them all, and ends a snapshot transfer in flight. A panic in it or in a
// child restarts it with new children (supervise.go); what outlives a life
// is kept in its peerRef.
type peerActor struct {
	t    *HTTP
	peer *peerRef
	life *peerLife

	pipeline *actor.PID
	writers  [2]*actor.PID // by streamKind
	readers  [2]*actor.PID
	up       [2]bool // whether each stream is attached
	// snapshots is the snapshot sender, nil without a SnapshotSource.
	snapshots *actor.PID
	// children names each child by its PID's Id, for the log line of a
	// restart; failed is set once a child's panic was handed on, or the
	// actor is restarting or stopping anyway, so that the failures of
	// children before they stop make no second restart.
	children map[string]string
	failed   bool
}

func newPeerActor(t *HTTP, p *peerRef) *peerActor {
	return &peerActor{t: t, peer: p, children: make(map[string]string)}
}

// Receive implements actor.Actor.
func (a *peerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *actor.Restarting, *actor.Stopping:
		// The children are stopped next: a failure of one of them
		// meanwhile needs no restart of its own.
		a.failed = true
		// Cut short what blocks a child (a POST, a transfer, a dial):
		// they stop only once their current message is handled.
		if a.life != nil {
			a.life.cancel()
		}
	case *actor.Stopped:
		if a.life != nil {
			a.life.end()
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
		if m.url != a.peer.url {
			a.peer.url = m.url
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

// start begins a life: after a restart, it settles for the life that
// ended, whose children have all stopped by now. The new life is in place
// first, so that a panic from here on is settled by the life after it.
func (a *peerActor) start(ctx actor.Context) {
	prev := a.peer.life
	a.life = newPeerLife(a.t, a.peer)
	a.peer.life = a.life
	if prev != nil {
		if lost := prev.settle(a.t); lost > 0 {
			a.t.lg.Debug("dropped the messages a failed peer actor held; reported the peer unreachable",
				zap.Uint64("peer", a.peer.id), zap.Int64("messages", lost))
		}
	}
	a.spawnChildren(ctx)
}

func (a *peerActor) spawnChildren(ctx actor.Context) {
	spawn := func(name string, produce func() actor.Actor) *actor.PID {
		pid := ctx.Spawn(a.t.props(name, produce))
		a.children[pid.Id] = name
		return pid
	}
	t, life, url := a.t, a.life, a.peer.url
	a.pipeline = spawn("pipeline", func() actor.Actor { return newPipeline(t, life, url) })
	if t.cfg.SnapshotSource != nil {
		a.snapshots = spawn("snapshot sender", func() actor.Actor { return newSnapshotSender(t, life, url) })
	}
	for _, k := range []streamKind{streamMsgApp, streamMessage} {
		a.writers[k] = spawn(k.String()+" writer", func() actor.Actor { return newStreamWriter(t, life, k) })
		a.readers[k] = spawn(k.String()+" reader", func() actor.Actor { return newStreamReader(t, life, k, url) })
	}
}

// HandleFailure implements actor.SupervisorStrategy for the peer's
// children: a child's panic is the peer actor's, so that the restart
// replaces every child and every connection at once, and the peer's
// bookkeeping is settled in one place.
func (a *peerActor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, msg any) {
	if a.failed {
		return // the restart under way stops this child too
	}
	a.failed = true
	name, ok := a.children[child.Id]
	if !ok {
		name = "child"
	}
	sup.EscalateFailure(childPanic{child: name, reason: reason}, msg)
}

// send picks the channel as rafthttp does: a snapshot by the snapshot
// sender with its data, or else by pipeline (a large one would hold up a
// stream for its whole transfer), MsgApp by the msgappv2 stream, anything by
// the message stream, and the pipeline when no stream is attached.
func (a *peerActor) send(ctx actor.Context, m *raftpb.Message) {
	// A failpoint (scripts/build-failpoints.sh), here to see every message
	// to the peer whatever its channel.
	// gofail: var peerBeforeSend struct{}

	switch {
	case m.GetType() == raftpb.MsgSnap && a.snapshots != nil:
		a.sendSnapshot(ctx, m)
	case m.GetType() == raftpb.MsgApp && a.up[streamMsgApp]:
		ctx.Send(a.writers[streamMsgApp], m)
	case m.GetType() != raftpb.MsgSnap && a.up[streamMessage]:
		ctx.Send(a.writers[streamMessage], m)
	default:
		if a.life.pipelineQueued.Add(1) > a.t.pipelineSize {
			a.life.pipelineQueued.Add(-1)
			a.life.done(m)
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
	if !a.life.snapshotBusy.CompareAndSwap(false, true) {
		a.life.done(m)
		a.peer.stats.snapsDropped.Add(1)
		a.t.lg.Warn("dropped a snapshot", zap.Uint64("peer", a.peer.id),
			zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()), zap.Error(ErrSnapshotInFlight))
		a.t.unreachable(m)
		return
	}
	ctx.Send(a.snapshots, m)
}
