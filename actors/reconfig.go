package actors

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
)

// readyPercent is how close a learner's log must be to the leader's before
// it may be promoted: its match index at least 90 % of the leader's, etcd's
// rule. A voter further behind would count towards quorums it cannot yet
// help reach.
const readyPercent = 0.9

// checkConfChange refuses, before it is proposed, a membership change that
// would leave the cluster without a quorum of started members: etcd's strict
// reconfiguration check, with "started" meaning up now (this member, or a
// peer the transport has a stream with). A promotion is decided by the
// leader alone, which knows how far the learner's log is.
func (r *Raft) checkConfChange(cc *raftpb.ConfChange) error {
	if err := confChangeFits(currentConfState(r.rn), cc.AsV2()); err != nil {
		return fmt.Errorf("%w: %w", messages.ErrConfChangeDeclined, err)
	}
	st := r.rn.Status()
	id := cc.GetNodeId()
	voters := st.Config.Voters.IDs()
	_, isVoter := voters[id]
	_, isLearner := st.Config.Learners[id]
	started := 0
	for v := range voters {
		if r.started(v) {
			started++
		}
	}
	switch cc.GetType() {
	case raftpb.ConfChangeAddLearnerNode:
		return nil // a learner counts for no quorum
	case raftpb.ConfChangeAddNode:
		if isVoter {
			return nil // raft treats it as an update
		}
		if isLearner {
			if err := r.learnerReady(st, id); err != nil {
				return err
			}
			return quorumCheck(len(voters)+1, started+1) // the learner counts as started, as in etcd
		}
		if started == 1 && len(voters) == 1 {
			// The second member of a one-member cluster: the only way to
			// grow it, and etcd allows it for the same reason.
			return nil
		}
		return quorumCheck(len(voters)+1, started)
	case raftpb.ConfChangeRemoveNode:
		if !isVoter {
			return nil
		}
		if r.started(id) {
			started--
		}
		return quorumCheck(len(voters)-1, started)
	}
	return nil
}

// started says whether a voter is up, as far as this member can tell.
func (r *Raft) started(id uint64) bool {
	return id == r.cfg.ID || !r.cfg.Transport.ActiveSince(id).IsZero()
}

func quorumCheck(members, started int) error {
	if quorum := members/2 + 1; started < quorum {
		return fmt.Errorf("%w (%d of %d would be up, %d needed)", messages.ErrNotEnoughStarted, started, members, quorum)
	}
	return nil
}

// learnerReady is etcd's isLearnerReady: only the leader knows the match
// indexes.
func (r *Raft) learnerReady(st raft.Status, id uint64) error {
	if st.RaftState != raft.StateLeader {
		return fmt.Errorf("%w (the leader is %d)", messages.ErrNotLeader, st.Lead)
	}
	pr, ok := st.Progress[id]
	if !ok {
		return fmt.Errorf("%w: %d", messages.ErrUnknownMember, id)
	}
	lead := st.Progress[r.cfg.ID].Match
	if float64(pr.Match) < float64(lead)*readyPercent {
		return fmt.Errorf("%w: its log reaches index %d, the leader's %d", messages.ErrLearnerNotReady, pr.Match, lead)
	}
	return nil
}
