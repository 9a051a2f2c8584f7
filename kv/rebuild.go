package kv

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/messages"
)

// A kv actor that panics is rebuilt in place (package actors,
// supervision.go), from what is durable, in four steps:
//
//  1. The actor that panicked hears *actor.Restarting and hands over
//     (handOver): its timers stop; every write waiting on it is answered
//     504, its outcome unknown (it may be applied yet), every read 503; a
//     defragmentation in progress is called off; and it leaves its
//     successor the last entry it applied whole, the leadership it knew,
//     its request ids and the message it was handling.
//  2. Successor makes a new actor over the same state, which on Started
//     rolls the db's batch transaction back (store.Rollback): the state is
//     the db's as of its last commit, as after a restart of the process.
//  3. It applies the log's entries after that commit up to the last one
//     the old actor applied whole, read from raft's storage (the entries
//     raft handed over are stable there, and nothing is compacted past the
//     db's commit), the way a defragmentation's copy is brought level:
//     nothing is answered or watched twice. A membership change among
//     them cannot be applied again without asking raft again, so every
//     conf change commits the db at once (applyConfChangeEntry) and none
//     is ever there; if one is, the member stops.
//  4. It commits, tells the hub the state was replaced (every watch ends
//     with the revision to resume from, as after a snapshot from the
//     leader), takes the leadership over (a leader's lease deadlines are
//     set anew, never shorter than before), and handles again the part of
//     the message in hand that the old actor had not applied, with its
//     responses to raft, which learns of those entries only then.
//
// A panic that comes back with the same entry is caught by the restart
// budget, which stops the member.

// Log is where the kv actor reads again the entries it applied since the
// db's last commit, after a panic: raft's storage (raft.MemoryStorage).
type Log interface {
	Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error)
}

// handoff is what a kv actor that panicked leaves to its successor.
type handoff struct {
	applied            uint64 // the last entry it applied whole
	leader, term       uint64
	ids                *reqid.Gen
	lastSnap, logBytes uint64
	// redo is the message in hand when it panicked, if it carried entries
	// or a snapshot: *raftpb.Message or messages.RestoreSnapshot.
	redo any
}

// errRebuild is the reason a member stops when its kv actor cannot be
// rebuilt from the db and the log.
var errRebuild = errors.New("rebuild the state machine after a panic")

// Successor returns the actor that takes over from a once a heard
// *actor.Restarting: a new actor over the same state, which rebuilds it
// when started. Called by the supervisor's producer.
func (a *Actor) Successor() *Actor {
	b, err := NewActor(a.cfg)
	if err != nil {
		// NewActor made a with this config: it cannot fail now, but if it
		// did, the member must not run on without a state machine.
		a.cfg.Logger.Error("could not make a new kv actor", zap.Error(err))
		if a.cfg.Fatal != nil {
			a.cfg.Fatal(messages.Fatal{Component: "kv", Err: fmt.Errorf("%w: %w", errRebuild, err)})
		}
		return a
	}
	b.handoff = a.left
	return b
}

// handOver is step 1. It runs on the actor's goroutine, after the panic.
func (a *Actor) handOver() {
	for _, t := range []*time.Timer{a.sweep, a.commitTimer, a.leases.timer} {
		if t != nil {
			t.Stop()
		}
	}
	unknown := messages.Result{Err: fmt.Errorf("%w: the state machine restarted", messages.ErrTimeout)}
	a.writes.drain(func(w *waiter) { a.send(w.reply, unknown) })
	for _, w := range a.answers {
		a.send(w.to, unknown) // applied, but not yet told: unknown is true too
	}
	a.answers = nil
	gone := messages.Result{Err: messages.ErrStopped}
	a.reads.drain(func(w *waiter) { a.send(w.reply, gone) })
	for _, w := range a.readReady {
		a.send(w.reply, gone)
	}
	a.readReady = nil
	if d := a.defrag; d != nil {
		// The copier, a child, stops with the actor; it ends its read
		// transaction, and the successor removes the copy it reports.
		d.cancel.Store(true)
		for _, w := range d.waiters {
			a.root.Send(w, fmt.Errorf("%w: the state machine restarted", messages.ErrDefragAborted))
		}
		a.defrag = nil
	}
	if a.encodingTx != nil {
		_ = a.encodingTx.Rollback()
		a.encodingTx = nil
	}
	a.left = &handoff{
		applied: a.applied,
		leader:  a.leader, term: a.leaderTerm,
		ids:      a.ids,
		lastSnap: a.lastSnap, logBytes: a.logBytes,
		redo: a.current,
	}
}

// rebuild is steps 2 to 4, on the successor's Started.
func (a *Actor) rebuild(ctx actor.Context) {
	h := a.handoff
	a.handoff = nil
	start := time.Now()
	if err := a.st.Rollback(); err != nil {
		a.fatal(fmt.Errorf("%w: %w", errRebuild, err))
		return
	}
	a.applied, _ = a.st.Applied()
	a.confState = a.st.ConfState()
	from := a.applied
	if rs, ok := h.redo.(messages.RestoreSnapshot); ok && rs.Snapshot.GetMetadata().GetIndex() > h.applied {
		// The state is replaced whole by the snapshot in hand, and the log
		// before it may be gone already.
		h.applied = from
	}
	if h.applied > from {
		if a.cfg.Log == nil {
			a.fatal(fmt.Errorf("%w: no log to read entries %d to %d from", errRebuild, from+1, h.applied))
			return
		}
		ents, err := a.cfg.Log.Entries(from+1, h.applied+1, math.MaxUint64)
		if err != nil {
			a.fatal(fmt.Errorf("%w: read entries %d to %d: %w", errRebuild, from+1, h.applied, err))
			return
		}
		never := func(uint64) bool { return false }
		for _, e := range ents {
			if e.GetType() != raftpb.EntryNormal {
				a.fatal(fmt.Errorf("%w: entry %d, a membership change, is past the db's last commit", errRebuild, e.GetIndex()))
				return
			}
			a.applied = e.GetIndex()
			if _, err := a.ap.Apply(e, never); err != nil {
				a.fatal(fmt.Errorf("%w: apply entry %d again: %w", errRebuild, e.GetIndex(), err))
				return
			}
		}
	}
	a.st.TakeEvents() // the hub hears of a reset, not of these
	a.commit()
	if a.failed {
		return
	}
	if a.cfg.Watch != nil {
		ctx.Send(a.cfg.Watch, messages.WatchReset{Revision: a.st.Revision(), Compacted: a.st.Compacted()})
	}
	a.ids = h.ids
	a.lastSnap, a.logBytes = h.lastSnap, h.logBytes
	a.leader, a.leaderTerm = h.leader, h.term
	a.leadershipForLeases(h.leader, h.term)
	a.noteState()
	a.cfg.Logger.Warn("rebuilt the state machine after a panic",
		zap.Uint64("db_index", from), zap.Uint64("replayed_to", a.applied), zap.Duration("took", time.Since(start)))
	switch m := h.redo.(type) {
	case *raftpb.Message:
		// Its entries up to h.applied went through whole, with their
		// conf changes to raft; the rest, and its responses, go now.
		rest := proto.Clone(m).(*raftpb.Message)
		rest.Entries = nil
		for _, e := range m.GetEntries() {
			if e.GetIndex() > h.applied {
				rest.Entries = append(rest.Entries, e)
			}
		}
		a.current = rest
		a.applyMsg(ctx, rest)
		a.current = nil
	case messages.RestoreSnapshot:
		a.current = m
		a.restore(ctx, m.Snapshot)
		a.current = nil
	}
}
