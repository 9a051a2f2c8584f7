package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
)

// A panic in a peer actor, or in one of its children (which hand it to the
// peer actor), restarts the peer actor and, with it, all its children: the
// streams it was writing to and reading from are let go and dialled or
// accepted anew, and the connections of its pipeline and snapshot sender
// are closed. protoactor keeps the actor's PID and mailbox across the
// restart, so the transport's map still names the live actor, and the
// messages waiting in the peer actor's own mailbox are sent by the next
// life. What its children held (the message being sent when the panic came
// and those queued behind it) is lost with them: the next life drops it
// from the peer's queue count and reports the peer unreachable, and a lost
// MsgSnap as a failed snapshot, as any lost message is reported; raft
// sends again.
//
// peerRestartLimit and peerRestartWindow are a peer actor's restart
// budget. A panic that comes back more than 3 times within 30 s is not a
// one-off: it fires on every message of some kind, or on what the peer
// keeps sending, and restarting only churns connections and log lines
// while the peer stays unreachable in all but name. Past the budget the
// member stops (HTTPConfig.Fatal), as the raft, kv and snapshotter actors
// do past theirs; 3 in 30 s is their budget too, so one policy holds for
// every actor. 30 s spans many election timeouts and redials, so a fault
// that fires on every attempt is caught within seconds, not minutes.
const (
	peerRestartLimit  = 3
	peerRestartWindow = 30 * time.Second
)

// restartsLabel is the peer actors' value of raftkv_actor_restarts_total's
// actor label: one for all peers, whose ids come and go with membership
// changes; the restart's log line names the peer.
const restartsLabel = "peer"

// restartRebuilt says, in a restart's log line, how a peer actor was
// rebuilt.
const restartRebuilt = "with fresh connections; what its children held was dropped and reported unreachable"

// errRestartBudget is why the member stops when a peer actor panicked more
// often than its restart budget allows.
var errRestartBudget = errors.New("restarted too often")

// childPanic is a child's panic as its peer actor hands it on: with the
// child's name, for the log line.
type childPanic struct {
	child  string
	reason any
}

// peerSupervisor is the strategy of the guardian of every peer actor of a
// transport. protoactor runs it on the failing peer actor's goroutine.
type peerSupervisor struct{ t *HTTP }

// HandleFailure implements actor.SupervisorStrategy: it restarts the peer
// actor within its budget, and past it stops the actor and the member.
// protoactor's OneForOneStrategy past its budget only stops the actor, with
// a word on its event stream: the peer would be dead with no one told.
func (s *peerSupervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason, _ any) {
	t := s.t
	p := t.peerByPID(child)
	if p == nil {
		// Removed, or the transport is closing: nothing to restart for.
		sup.StopChildren(child)
		return
	}
	who, cause := "peer", reason
	if c, ok := reason.(childPanic); ok {
		who, cause = c.child, c.reason
	}
	what := redact.Text(fmt.Sprint(cause), 0)
	rs.Fail()
	if n := rs.NumberOfFailures(peerRestartWindow); n > peerRestartLimit {
		err := fmt.Errorf("the actor of peer %d: %w: %d panics within %v, the last in its %s: %s",
			p.id, errRestartBudget, n, peerRestartWindow, who, what)
		if t.cfg.Fatal != nil {
			t.cfg.Fatal(messages.Fatal{Component: "transport", Err: err})
		} else {
			t.lg.Error("a peer actor failed for good; stopped it", zap.Error(err))
		}
		sup.StopChildren(child)
		return
	}
	if t.restarts != nil {
		t.restarts.Inc()
	}
	// The line the member's other actors write on a restart, with the peer
	// and the part of its actor that failed.
	t.lg.Warn("an actor panicked; restarted it", zap.String("actor", restartsLabel), zap.Uint64("peer", p.id),
		zap.String("failed", who), zap.String("panic", what), zap.String("rebuilt", restartRebuilt))
	sup.RestartChildren(child)
}

// peerByPID is the current peer whose actor is pid, nil if none.
func (t *HTTP) peerByPID(pid *actor.PID) *peerRef {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, p := range t.peers {
		if p.pid.Equal(pid) {
			return p
		}
	}
	return nil
}

// peerLife is what one life of a peer actor shares with its children: the
// connections they use and the count of the messages they hold. A restart
// ends the life, stopping the children with whatever their mailboxes hold;
// the next life settles for that before it starts its own.
type peerLife struct {
	peer *peerRef
	// ctx ends with the life: every POST, transfer and dial of its
	// children is cut short, so a restart or a removal does not wait for
	// a stalled one.
	ctx    context.Context
	cancel context.CancelFunc
	// Streams, the pipeline and snapshots use separate clients (see
	// newPeerClient); each life has its own, so the next one never reuses
	// a connection of a life that failed.
	pipeline, streams, snapshots *http.Client

	// held counts the messages the peer actor took from its mailbox that
	// no child has finished with (written, sent or dropped and reported);
	// heldSnaps the MsgSnaps among them.
	held, heldSnaps atomic.Int64
	// pipelineQueued bounds what waits for the pipeline, which is slow:
	// one POST per message.
	pipelineQueued atomic.Int64
	// snapshotBusy is set while the snapshot sender has a MsgSnap: one
	// transfer at a time.
	snapshotBusy atomic.Bool
}

func newPeerLife(t *HTTP, p *peerRef) *peerLife {
	ctx, cancel := context.WithCancel(t.ctx)
	return &peerLife{
		peer:      p,
		ctx:       ctx,
		cancel:    cancel,
		pipeline:  newPeerClient(t.cfg.TLS, connReadTimeout),
		streams:   newPeerClient(t.cfg.TLS, connReadTimeout),
		snapshots: newPeerClient(t.cfg.TLS, snapshotAnswerTimeout),
	}
}

// hold counts each raft message the peer actor's mailbox hands over as
// held by the actor's current life, before the actor sees it: whatever
// panics from then on, the message is accounted for (settle).
func (p *peerRef) hold(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
		if m, ok := env.Message.(*raftpb.Message); ok && p.life != nil {
			p.life.take(m)
		}
		next(c, env)
	}
}

// take counts m as held by this life.
func (l *peerLife) take(m *raftpb.Message) {
	l.held.Add(1)
	if m.GetType() == raftpb.MsgSnap {
		l.heldSnaps.Add(1)
	}
}

// done says this life is finished with m, which leaves the peer's queue.
func (l *peerLife) done(m *raftpb.Message) {
	if m.GetType() == raftpb.MsgSnap {
		l.heldSnaps.Add(-1)
	}
	l.held.Add(-1)
	l.peer.queued.Add(-1)
}

// end lets go of the life's connections; call it once its children have
// stopped.
func (l *peerLife) end() {
	l.cancel()
	l.pipeline.CloseIdleConnections()
	l.streams.CloseIdleConnections()
	l.snapshots.CloseIdleConnections()
}

// settle accounts for a life that ended in a restart, once its children
// have stopped: what they still held is gone. It leaves the peer's queue,
// and raft hears the peer unreachable (and a snapshot to it failed) and
// sends again. It returns how many messages were lost.
func (l *peerLife) settle(t *HTTP) int64 {
	l.end()
	lost := l.held.Load()
	if lost <= 0 {
		return 0
	}
	l.peer.queued.Add(-lost)
	t.cfg.Inbox(messages.ReportUnreachable{ID: l.peer.id})
	if l.heldSnaps.Load() > 0 {
		t.cfg.Inbox(messages.ReportSnapshot{ID: l.peer.id, Status: raft.SnapshotFailure})
	}
	return lost
}

// props are the props of a peer's actor or child named name. tap, which
// only this package's tests set, sees every message the actor takes, on
// its goroutine, and runs the actor's handling of it through next.
func (t *HTTP) props(name string, produce func() actor.Actor, opts ...actor.PropsOption) *actor.Props {
	if tap := t.tap; tap != nil {
		opts = append(opts, actor.WithReceiverMiddleware(func(next actor.ReceiverFunc) actor.ReceiverFunc {
			return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
				tap(name, env.Message, func() { next(c, env) })
			}
		}))
	}
	return actor.PropsFromProducer(produce, opts...)
}
