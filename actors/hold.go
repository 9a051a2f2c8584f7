package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// raft drops a proposal it cannot place at once: on a member that knows no
// leader (an election is on), and on a leader that is handing leadership
// over. A proposal a follower forwarded is then lost without a word, and its
// client waits out its whole timeout. Around a leadership transfer that is
// every write in flight for a few milliseconds. So the raft actor holds such
// proposals, its own and those forwarded to it, and places them as soon as a
// leader can take them: with the new leader, through raft's forwarding.
//
// Holding changes nothing raft promises: a held proposal was not proposed
// yet, so it is either placed later or failed as it would have been.

// Bounds on what is held. A held proposal waits at most an election timeout:
// by then a leader is elected or the cluster has none to offer, and the
// client is better told so (503) than kept waiting. The size bounds match
// raft's own bound on a leader's uncommitted log, so holding never keeps
// more than raft would.
const (
	maxHeld      = 1024
	maxHeldBytes = maxUncommittedSize
)

// heldProposal is one proposal raft could not place when it came: the
// kv actor's own (local, with its id), or a peer's forwarded MsgProp.
type heldProposal struct {
	local *messages.Propose
	cc    *messages.ProposeConfChange
	peer  *raftpb.Message
	bytes int
	until time.Time
}

// canPlace reports whether raft would take a proposal now.
func (r *Raft) canPlace() bool {
	st := r.rn.BasicStatus()
	if st.Lead == raft.None {
		return false
	}
	return st.Lead != r.cfg.ID || st.LeadTransferee == raft.None
}

// hold keeps a proposal for later, or fails it when the bounds are reached.
func (r *Raft) hold(ctx actor.Context, h heldProposal) {
	if len(r.held) >= maxHeld || r.heldBytes+h.bytes > maxHeldBytes {
		r.failHeld(ctx, h, messages.ErrNoLeader)
		return
	}
	h.until = time.Now().Add(r.holdFor())
	r.held = append(r.held, h)
	r.heldBytes += h.bytes
}

// holdFor is one election timeout of wall time.
func (r *Raft) holdFor() time.Duration {
	return time.Duration(r.cfg.ElectionTick) * r.cfg.TickInterval
}

// releaseHeld places every held proposal, in the order they came, once raft
// can take them.
func (r *Raft) releaseHeld(ctx actor.Context) {
	if len(r.held) == 0 || !r.canPlace() {
		return
	}
	held := r.held
	r.held, r.heldBytes = nil, 0
	for _, h := range held {
		r.place(ctx, h)
	}
}

// expireHeld fails what was held for longer than an election timeout.
func (r *Raft) expireHeld(ctx actor.Context, now time.Time) {
	kept := r.held[:0]
	for _, h := range r.held {
		if now.After(h.until) {
			r.heldBytes -= h.bytes
			r.failHeld(ctx, h, messages.ErrNoLeader)
			continue
		}
		kept = append(kept, h)
	}
	clear(r.held[len(kept):])
	r.held = kept
}

// place hands a proposal to raft, or holds it if raft cannot take it now.
func (r *Raft) place(ctx actor.Context, h heldProposal) {
	if !r.canPlace() {
		r.hold(ctx, h)
		return
	}
	switch {
	case h.local != nil:
		if err := r.rn.Propose(h.local.Data); err != nil {
			ctx.Send(r.cfg.KV, messages.ProposalFailed{ID: h.local.ID, Err: r.proposalError(err)})
		}
	case h.cc != nil:
		if err := r.rn.ProposeConfChange(h.cc.Change); err != nil {
			ctx.Send(r.cfg.KV, messages.ProposalFailed{ID: h.cc.ID, Err: r.proposalError(err)})
		}
	case h.peer != nil:
		// Checked again: what the guard knows (the leader's configuration,
		// for a conf change) may have changed while it was held.
		if err := r.guard.admit(h.peer); err != nil {
			r.m.RefusedMessages.Inc()
			r.cfg.Logger.Warn("turned away a held proposal from a peer", zap.Uint64("from", h.peer.GetFrom()), zap.Error(err))
			return
		}
		if err := r.rn.Step(h.peer); err != nil {
			r.cfg.Logger.Debug("dropped a forwarded proposal", zap.Uint64("from", h.peer.GetFrom()), zap.Error(err))
		}
	}
}

// failHeld tells the kv actor that a proposal of its own cannot be placed;
// a peer's is dropped, as raft would have dropped it (its member's client
// times out, as it would have without holding).
func (r *Raft) failHeld(ctx actor.Context, h heldProposal, err error) {
	switch {
	case h.local != nil:
		ctx.Send(r.cfg.KV, messages.ProposalFailed{ID: h.local.ID, Err: err})
	case h.cc != nil:
		ctx.Send(r.cfg.KV, messages.ProposalFailed{ID: h.cc.ID, Err: err})
	default:
		r.cfg.Logger.Debug("dropped a forwarded proposal: no leader to take it", zap.Uint64("from", h.peer.GetFrom()))
	}
}

func proposalBytes(m *raftpb.Message) int {
	n := 0
	for _, e := range m.GetEntries() {
		n += len(e.GetData())
	}
	return n
}
