package actors

import (
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// drainWaiter is a DrainForwarded waiting for its answer.
type drainWaiter struct {
	reply *actor.PID
	quiet time.Duration
}

// settleDrains answers the DrainForwarded requests whose quiet time has
// passed since a peer last forwarded a request here.
func (r *Raft) settleDrains(ctx actor.Context, now time.Time) {
	kept := r.drains[:0]
	for _, w := range r.drains {
		if now.Sub(r.lastForwarded) >= w.quiet {
			ctx.Send(w.reply, messages.ForwardingDrained{})
			continue
		}
		kept = append(kept, w)
	}
	clear(r.drains[len(kept):])
	r.drains = kept
}

// transferWaiter is a TransferLeadership waiting for its answer.
type transferWaiter struct {
	reply *actor.PID
	to    uint64
	until time.Time
}

// transfer starts moving leadership to m.To (or, on the leader, to the most
// caught-up voter that is up) and answers once it moved or failed. raft
// forwards a follower's request to the leader itself.
func (r *Raft) transfer(ctx actor.Context, m messages.TransferLeadership) {
	st := r.rn.Status()
	to := m.To
	if to == 0 {
		if st.RaftState != raft.StateLeader {
			ctx.Respond(messages.LeadershipTransferred{Leader: st.Lead, Err: messages.ErrNotLeader})
			return
		}
		to = r.bestTransferee(st)
		if to == 0 {
			ctx.Respond(messages.LeadershipTransferred{Leader: st.Lead, Err: messages.ErrNoTransferee})
			return
		}
	}
	if err := r.checkTransferee(st, to); err != nil {
		ctx.Respond(messages.LeadershipTransferred{Leader: st.Lead, Err: err})
		return
	}
	if st.Lead == to {
		ctx.Respond(messages.LeadershipTransferred{Leader: to})
		return
	}
	if st.Lead == raft.None {
		ctx.Respond(messages.LeadershipTransferred{Err: messages.ErrNoLeader})
		return
	}
	r.cfg.Logger.Info("transferring leadership", zap.Uint64("from", st.Lead), zap.Uint64("to", to))
	r.rn.TransferLeader(to)
	// raft gives up a transfer after an election timeout; a tick more lets
	// the new leader's first messages arrive.
	r.transfers = append(r.transfers, transferWaiter{reply: ctx.Sender(), to: to,
		until: time.Now().Add(r.holdFor() + 2*r.cfg.TickInterval)})
}

// checkTransferee refuses a transfer raft would ignore.
func (r *Raft) checkTransferee(st raft.Status, to uint64) error {
	if _, ok := st.Config.Learners[to]; ok {
		return fmt.Errorf("%w: %d", messages.ErrIsLearner, to)
	}
	if _, ok := st.Config.Voters.IDs()[to]; !ok {
		return fmt.Errorf("%w: %d", messages.ErrUnknownMember, to)
	}
	return nil
}

// bestTransferee is the voter, other than this leader, whose log is the
// most complete among those heard from recently: raft sends it TimeoutNow
// as soon as it has every entry, so the fewer it lacks the sooner it leads.
func (r *Raft) bestTransferee(st raft.Status) uint64 {
	var best uint64
	var bestMatch uint64
	ids := slices.Sorted(func(yield func(uint64) bool) {
		for id := range st.Config.Voters.IDs() {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		pr, ok := st.Progress[id]
		if id == r.cfg.ID || !ok || pr.IsLearner || !r.isUp(id, pr) {
			continue
		}
		if best == 0 || pr.Match > bestMatch {
			best, bestMatch = id, pr.Match
		}
	}
	return best
}

// isUp says whether a follower answers the leader and its transport sees it.
func (r *Raft) isUp(id uint64, pr tracker.Progress) bool {
	return pr.RecentActive && !r.cfg.Transport.ActiveSince(id).IsZero()
}

// settleTransfers answers the transfers that leadership now settles: the
// member asked for leads, or time is up.
func (r *Raft) settleTransfers(ctx actor.Context, now time.Time) {
	if len(r.transfers) == 0 {
		return
	}
	lead := r.rn.BasicStatus().Lead
	kept := r.transfers[:0]
	for _, w := range r.transfers {
		switch {
		case lead == w.to:
			r.cfg.Logger.Info("leadership transferred", zap.Uint64("to", w.to))
			ctx.Send(w.reply, messages.LeadershipTransferred{Leader: lead})
		case now.After(w.until):
			ctx.Send(w.reply, messages.LeadershipTransferred{Leader: lead,
				Err: fmt.Errorf("%w: member %d is not the leader after %v (%s)", messages.ErrTransferFailed, w.to, r.holdFor(), leaderNow(lead))})
		default:
			kept = append(kept, w)
		}
	}
	clear(r.transfers[len(kept):])
	r.transfers = kept
}

// leaderNow says who leads, for an error text: "the leader is member 2", or
// "no member leads" for raft's 0.
func leaderNow(lead uint64) string {
	if lead == raft.None {
		return "no member leads"
	}
	return fmt.Sprintf("the leader is member %d", lead)
}
