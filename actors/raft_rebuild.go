package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// A raft actor that panics is rebuilt in place (supervision.go), from what
// is durable, in three steps:
//
//  1. The actor that panicked hears *actor.Restarting and hands over
//     (handOver): its timer stops; the reads and proposals it held or had
//     asked raft for fail (503: nothing was decided for them), as do the
//     leadership transfers and drains waiting on it; it leaves its
//     successor the members it knew, the commit index and whether it led.
//  2. The successor has the wal actor write out the old RawNode's appends
//     (messages.FlushWAL: raft must never find in its storage entries it
//     did not ask for, or it reads them where it keeps its own and
//     panics), then asks the kv actor for the index it applied and the
//     configuration as of it (messages.AppliedStateRequest), and only then
//     makes its RawNode: raft must start at the state machine's applied
//     index, or it hands over entries already applied, and a response for
//     an index it does not expect makes it panic. Meanwhile it drops what
//     raft would not take (the responses to the old RawNode's appends and
//     applies, every one of them sent before the kv actor's answer, and
//     peers' messages, which raft sends again) and keeps everything else
//     to handle once it has a RawNode.
//  3. With the answer it makes the RawNode from the durable hard state and
//     log (the commit index raised to what the old one knew, and to the
//     applied index, never past the log), with that configuration; and if
//     it led, it campaigns at once as a leadership transfer does (its log
//     is the longest, and the followers, who heard from it moments ago,
//     refuse any other vote until an election timeout passes).

// raftHandoff is what a raft actor that panicked leaves to its successor.
type raftHandoff struct {
	members map[uint64]string
	commit  uint64
	leader  bool
}

// keptMsg is a message the successor handles once it has a RawNode, with
// the sender it came from.
type keptMsg struct {
	msg    any
	sender *actor.PID
}

// Successor returns the raft actor that takes over from r once r heard
// *actor.Restarting. Called by the supervisor's producer.
func (r *Raft) Successor() *Raft {
	cfg := r.cfg
	cfg.Bootstrap = nil
	return &Raft{
		cfg:      cfg,
		m:        r.m,
		members:  r.left.members,
		inflight: make(map[uint64]*readRound),
		handoff:  r.left,
	}
}

// handOver is step 1.
func (r *Raft) handOver(ctx actor.Context) {
	if r.ticker != nil {
		r.ticker.Stop()
	}
	ids := r.readBatch
	for _, rr := range r.inflight {
		ids = append(ids, rr.ids...)
	}
	if len(ids) > 0 {
		ctx.Send(r.cfg.KV, messages.ReadIndexFailed{IDs: ids, Err: messages.ErrStopped})
	}
	for _, h := range r.held {
		r.failHeld(ctx, h, messages.ErrStopped)
	}
	r.held, r.heldBytes = nil, 0
	for _, w := range r.transfers {
		ctx.Send(w.reply, messages.LeadershipTransferred{Err: fmt.Errorf("%w: the raft actor restarted", messages.ErrTransferFailed)})
	}
	r.transfers = nil
	for _, w := range r.drains {
		ctx.Send(w.reply, messages.ForwardingDrained{})
	}
	r.drains = nil
	h := &raftHandoff{members: r.members}
	if r.rn != nil {
		st := r.rn.BasicStatus()
		h.commit, h.leader = st.GetCommit(), st.RaftState == raft.StateLeader
	}
	r.left = h
}

// awaitApplied is step 2: what the successor does with each message until
// it has a RawNode.
func (r *Raft) awaitApplied(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		for id, u := range r.members {
			r.cfg.Transport.AddPeer(id, u)
		}
		ctx.Request(r.cfg.WAL, messages.FlushWAL{})
	case messages.WALFlushed:
		if m.Err != nil {
			return // the wal actor failed, and stops the member
		}
		ctx.Request(r.cfg.KV, messages.AppliedStateRequest{})
	case messages.AppliedState:
		r.rebuild(ctx, m)
	case *actor.Restarting:
		// It panicked again before it had a RawNode: what it was handed
		// is still all there is to hand on.
		r.left = r.handoff
	case actor.SystemMessage, actor.AutoReceiveMessage, flush, tick, messages.Tick, *raftpb.Message:
		// Nothing to flush or tick yet; raft sends its messages again.
	default:
		r.waiting = append(r.waiting, keptMsg{msg: m, sender: ctx.Sender()})
	}
}

// rebuild is step 3.
func (r *Raft) rebuild(ctx actor.Context, m messages.AppliedState) {
	h := r.handoff
	if err := r.startAt(m.Index, m.ConfState, h.commit); err != nil {
		r.cfg.Logger.Error("could not rebuild the raft actor", zap.Error(err))
		if r.cfg.Fatal != nil {
			r.cfg.Fatal(messages.Fatal{Component: "raft", Err: err})
		}
		return
	}
	r.handoff = nil
	r.armTick(ctx)
	r.campaignIfAlone()
	if h.leader {
		// A transfer's campaign: voters grant it inside their leader
		// lease, which a plain one would wait out.
		if err := r.rn.Step(&raftpb.Message{Type: raftpb.MsgTimeoutNow.Enum(), To: new(r.cfg.ID), From: new(r.cfg.ID)}); err != nil {
			r.cfg.Logger.Warn("the rebuilt raft actor could not campaign", zap.Error(err))
		}
	}
	r.cfg.Logger.Warn("rebuilt the raft actor after a panic", zap.Uint64("applied", m.Index), zap.Bool("was_leader", h.leader))
	for _, k := range r.waiting {
		ctx.RequestWithCustomSender(ctx.Self(), k.msg, k.sender)
	}
	r.waiting = nil
	r.flushing = true
	ctx.Send(ctx.Self(), flush{})
}

// startAt makes the RawNode of a rebuilt raft actor: from the durable hard
// state and log, at the state machine's applied index and configuration.
func (r *Raft) startAt(applied uint64, cs *raftpb.ConfState, commit uint64) error {
	type storage interface {
		SetStartConfState(*raftpb.ConfState)
		SetHardState(*raftpb.HardState) error
	}
	s, ok := r.cfg.Storage.(storage)
	if !ok {
		return fmt.Errorf("rebuild the raft actor: its storage %T cannot be started again", r.cfg.Storage)
	}
	hs, _, err := r.cfg.Storage.InitialState()
	if err != nil {
		return fmt.Errorf("rebuild the raft actor: %w", err)
	}
	last, err := r.cfg.Storage.LastIndex()
	if err != nil {
		return fmt.Errorf("rebuild the raft actor: %w", err)
	}
	// Entries the old RawNode knew committed (and the state machine
	// applied) are committed whatever the WAL's last hard state says; none
	// past the log, which the old one may have known but not persisted.
	if c := min(max(hs.GetCommit(), commit, applied), last); c > hs.GetCommit() {
		if err := s.SetHardState(&raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(c)}); err != nil {
			return fmt.Errorf("rebuild the raft actor: raise the commit index to %d: %w", c, err)
		}
	}
	s.SetStartConfState(cs)
	rn, g, err := newRawNode(r.cfg, applied)
	if err != nil {
		return fmt.Errorf("rebuild the raft actor: %w", err)
	}
	r.rn, r.guard = rn, g
	return nil
}
