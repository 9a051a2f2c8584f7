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
// Two more cases lose a proposal without a word. A leader removed from the
// cluster stops, but its followers take it for the leader until their
// election timeout: what they forward to it is dropped, since the transport
// no longer knows it. And a leader replaces a conf change with an empty
// entry while an earlier one may be unapplied (raft's pendingConfIndex,
// which a new leader sets to the end of its log): the client would wait for
// an entry that never comes, then hear that the outcome is unknown. Both are
// held too: the first until a new leader is elected, the second until the
// leader has applied the entries that may hold a conf change.
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

// canPlace reports whether raft would take a proposal now; conf says it is
// a conf change.
func (r *Raft) canPlace(conf bool) bool {
	st := r.rn.BasicStatus()
	switch {
	case st.Lead == raft.None || st.Lead == r.leadRemoved:
		return false
	case st.Lead != r.cfg.ID:
		return true
	case st.LeadTransferee != raft.None:
		return false
	}
	// A leadership this member has not yet seen a Ready of has not set
	// pendingConf yet.
	return !conf || (st.GetTerm() == r.leadTerm && !r.leaderStart && st.Applied >= r.pendingConf)
}

// noteAppended follows, on a leader, the highest index that may hold a conf
// change not yet applied, as raft's pendingConfIndex does: the end of the log
// when leadership began, then every conf change appended.
func (r *Raft) noteAppended(m *raftpb.Message) {
	if r.lead != r.cfg.ID || m.GetType() != raftpb.MsgStorageAppend {
		return
	}
	for _, e := range m.GetEntries() {
		if r.leaderStart && e.GetTerm() == r.leadTerm {
			// The empty entry that opens a leadership: raft's
			// pendingConfIndex is the end of the log just before it.
			r.pendingConf, r.leaderStart = e.GetIndex()-1, false
		}
		if t := e.GetType(); t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2 {
			r.pendingConf = max(r.pendingConf, e.GetIndex())
		}
	}
}

// isConfChange reports whether a forwarded proposal carries a conf change.
func isConfChange(m *raftpb.Message) bool {
	for _, e := range m.GetEntries() {
		if t := e.GetType(); t == raftpb.EntryConfChange || t == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// hold keeps a proposal for later, or fails it when the bounds are reached.
func (r *Raft) hold(ctx actor.Context, h heldProposal) {
	if len(r.held) >= maxHeld || r.heldBytes+h.bytes > maxHeldBytes {
		r.failHeld(ctx, h, messages.ErrNoLeader)
		return
	}
	if h.until.IsZero() { // held again after a release keeps its deadline
		h.until = time.Now().Add(r.holdFor())
	}
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
	if len(r.held) == 0 || !r.canPlace(false) {
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
			r.failHeld(ctx, h, r.heldTooLong(h))
			continue
		}
		kept = append(kept, h)
	}
	clear(r.held[len(kept):])
	r.held = kept
}

// place hands a proposal to raft, or holds it if raft cannot take it now.
func (r *Raft) place(ctx actor.Context, h heldProposal) {
	if !r.canPlace(h.cc != nil || (h.peer != nil && isConfChange(h.peer))) {
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

// heldTooLong says why a proposal could not be placed in time.
func (r *Raft) heldTooLong(h heldProposal) error {
	if h.cc != nil && r.canPlace(false) {
		return messages.ErrConfChangePending
	}
	return messages.ErrNoLeader
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
