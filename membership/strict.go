package membership

import (
	"fmt"

	"github.com/raftkv/node/messages"
)

// Change is a membership change as the strict reconfiguration check sees
// it.
type Change int

const (
	AddVoter   Change = iota + 1 // a new member that votes
	AddLearner                   // a new member that does not
	Promote                      // a learner made a voter
	Remove                       // a member removed
)

// CheckStrict is etcd's strict reconfiguration check: it refuses a change
// to member id that would leave the cluster without a quorum of started
// members (ErrNotEnoughStarted). voters maps each voter to whether it is
// started: up now, as far as the member asking can tell. A learner counts
// for no quorum, so adding one, or removing one, always passes; a learner
// promoted counts as started, as in etcd; and the second member of a
// one-member cluster is let in, the only way to grow it (etcd too).
// Adding a voter that is one already changes nothing (raft reads it as an
// update) and passes.
func CheckStrict(voters map[uint64]bool, change Change, id uint64) error {
	started := 0
	for _, up := range voters {
		if up {
			started++
		}
	}
	up, isVoter := voters[id]
	switch change {
	case AddVoter:
		if isVoter || (started == 1 && len(voters) == 1) {
			return nil
		}
		return quorum(len(voters)+1, started)
	case Promote:
		return quorum(len(voters)+1, started+1)
	case Remove:
		if !isVoter {
			return nil
		}
		if up {
			started--
		}
		return quorum(len(voters)-1, started)
	}
	return nil
}

func quorum(members, started int) error {
	if q := members/2 + 1; started < q {
		return fmt.Errorf("%w (%d of %d would be up, %d needed)", messages.ErrNotEnoughStarted, started, members, q)
	}
	return nil
}

// readyPercent is how close a learner's log must be to the leader's before
// it may be promoted: its match index at least 90 % of the leader's,
// etcd's rule. A voter further behind would count towards quorums it
// cannot yet help reach.
const readyPercent = 0.9

// LearnerCaughtUp is etcd's isLearnerReady, from the learner's match index
// and the leader's own, which only the leader knows.
func LearnerCaughtUp(match, leaderMatch uint64) error {
	if float64(match) < float64(leaderMatch)*readyPercent {
		return fmt.Errorf("%w: its log reaches index %d, the leader's %d", messages.ErrLearnerNotReady, match, leaderMatch)
	}
	return nil
}
