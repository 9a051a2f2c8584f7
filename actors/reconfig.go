package actors

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// checkConfChange refuses, before it is proposed, a membership change that
// would leave the cluster without a quorum of started members: etcd's strict
// reconfiguration check (membership.CheckStrict), with "started" meaning up
// now (this member, or a peer the transport has a stream with). A promotion
// is decided by the leader alone, which knows how far the learner's log is.
func (r *Raft) checkConfChange(cc *raftpb.ConfChange) error {
	if err := confChangeFits(currentConfState(r.rn), cc.AsV2()); err != nil {
		return fmt.Errorf("%w: %w", messages.ErrConfChangeDeclined, err)
	}
	st := r.rn.Status()
	id := cc.GetNodeId()
	voters := make(map[uint64]bool)
	for v := range st.Config.Voters.IDs() {
		voters[v] = r.started(v)
	}
	var change membership.Change
	switch cc.GetType() {
	case raftpb.ConfChangeAddLearnerNode:
		change = membership.AddLearner
	case raftpb.ConfChangeAddNode:
		change = membership.AddVoter
		if _, isLearner := st.Config.Learners[id]; isLearner {
			if err := r.learnerReady(st, id); err != nil {
				return err
			}
			change = membership.Promote
		}
	case raftpb.ConfChangeRemoveNode:
		change = membership.Remove
	default:
		return nil
	}
	return membership.CheckStrict(voters, change, id)
}

// started says whether a voter is up, as far as this member can tell.
func (r *Raft) started(id uint64) bool {
	return id == r.cfg.ID || !r.cfg.Transport.ActiveSince(id).IsZero()
}

// learnerReady is etcd's isLearnerReady (membership.LearnerCaughtUp): only
// the leader knows the match indexes.
func (r *Raft) learnerReady(st raft.Status, id uint64) error {
	if st.RaftState != raft.StateLeader {
		return fmt.Errorf("%w (the leader is %d)", messages.ErrNotLeader, st.Lead)
	}
	pr, ok := st.Progress[id]
	if !ok {
		return fmt.Errorf("%w: %d", messages.ErrUnknownMember, id)
	}
	return membership.LearnerCaughtUp(pr.Match, st.Progress[r.cfg.ID].Match)
}
