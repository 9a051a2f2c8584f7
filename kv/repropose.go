package kv

import (
	"maps"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// Proposing again what a dead leader lost.
//
// A follower's raft forwards a proposal to the leader as a MsgProp; a
// leader that dies (or steps down) before it appends it loses it without a
// word, and so does a transport that cannot reach it. Nothing tells the
// proposer, whose clients would wait out their whole request timeout and
// hear that the outcome is unknown (504). So when the raft actor names a
// new leadership (messages.LeaderChanged), every proposal still in flight
// that was made under another one is proposed again, with the same bytes:
// the same batch id and request ids. If the first copy was not lost after
// all, the log holds both, and the state machine applies the second as
// nothing (package store, dedup.go); whichever copy is applied first settles the clients.
//
// Only the native format keeps proposals in flight (batch.go), so only it
// proposes again: raftexample's members would apply a copy twice.
//
// A proposal is proposed again at most once per leadership, and only
// before its deadline; after that its clients have been answered 504 and
// it leaves the flight (expire). One made under the leadership named is not
// proposed again: it went to that leader (or waits in the raft actor for
// it), which is alive as far as anyone knows. Nor is one made before this
// actor heard of any leader (at start): the raft actor held it until a
// leader was known, or placed it with one it had already named in a
// LeaderChanged still on its way here. Either way it went to the leader of
// the first LeaderChanged to come (or a later one, which proposes it again
// anyway), and it is counted as made under that one.

// leaderChanged proposes again, in the order they were first proposed,
// the proposals in flight made under another leadership than m's.
func (a *Actor) leaderChanged(ctx actor.Context, m messages.LeaderChanged) {
	a.leader, a.leaderTerm = m.Leader, m.Term
	if a.failed || len(a.inflight) == 0 {
		return
	}
	now := time.Now()
	n := 0
	// Request and batch ids count up as they are made (package reqid).
	for _, id := range slices.Sorted(maps.Keys(a.inflight)) {
		b := a.inflight[id]
		if b.data == nil || now.After(b.deadline) || (b.leader == m.Leader && b.term == m.Term) {
			continue
		}
		if b.leader == 0 { // made before any leader was named: see above
			b.leader, b.term = m.Leader, m.Term
			continue
		}
		b.leader, b.term, b.reproposed = m.Leader, m.Term, true
		ctx.Send(a.cfg.Raft, messages.Propose{ID: id, Data: b.data})
		n++
	}
	if n > 0 {
		a.cfg.Logger.Info("proposed again the proposals in flight under the previous leader",
			zap.Int("proposals", n), zap.Uint64("leader", m.Leader), zap.Uint64("term", m.Term))
	}
}
