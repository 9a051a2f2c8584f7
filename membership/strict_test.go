package membership_test

import (
	"errors"
	"testing"

	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// etcd's strict reconfiguration check: which changes pass depending on
// which voters are up.
func TestCheckStrict(t *testing.T) {
	up := func(ids ...uint64) map[uint64]bool {
		m := map[uint64]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	three := func(down ...uint64) map[uint64]bool {
		m := up(1, 2, 3)
		for _, id := range down {
			m[id] = false
		}
		return m
	}
	for _, c := range []struct {
		name   string
		voters map[uint64]bool
		change membership.Change
		id     uint64
		want   error
	}{
		{"add a voter, all up", three(), membership.AddVoter, 4, nil},
		{"add a voter, one down", three(3), membership.AddVoter, 4, messages.ErrNotEnoughStarted},
		{"add a learner, one down", three(3), membership.AddLearner, 4, nil},
		{"add a learner, two down", three(2, 3), membership.AddLearner, 4, nil},
		{"add a voter that is one (an update), one down", three(3), membership.AddVoter, 2, nil},
		{"the second member of a one-member cluster", up(1), membership.AddVoter, 2, nil},
		{"the third member of two, one down", map[uint64]bool{1: true, 2: false}, membership.AddVoter, 3, messages.ErrNotEnoughStarted},
		{"the third member of two, both up", up(1, 2), membership.AddVoter, 3, nil},
		// The learner counts as started once promoted.
		{"promote, one down", three(3), membership.Promote, 4, nil},
		{"promote, two down", three(2, 3), membership.Promote, 4, messages.ErrNotEnoughStarted},
		{"promote in a one-member cluster", up(1), membership.Promote, 2, nil},
		{"remove a voter that is down", three(3), membership.Remove, 3, nil},
		{"remove a voter that is up, another down", three(3), membership.Remove, 2, messages.ErrNotEnoughStarted},
		{"remove a voter, all up", three(), membership.Remove, 2, nil},
		{"remove a voter, two down", three(2, 3), membership.Remove, 3, messages.ErrNotEnoughStarted},
		{"remove a learner, two down", three(2, 3), membership.Remove, 4, nil},
		{"five voters, two down: remove one that runs", map[uint64]bool{1: true, 2: true, 3: true, 4: false, 5: false}, membership.Remove, 3, messages.ErrNotEnoughStarted},
		{"five voters, two down: remove one that is down", map[uint64]bool{1: true, 2: true, 3: true, 4: false, 5: false}, membership.Remove, 5, nil},
	} {
		err := membership.CheckStrict(c.voters, c.change, c.id)
		if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// A learner may be promoted once its log reaches 90 % of the leader's.
func TestLearnerCaughtUp(t *testing.T) {
	for _, c := range []struct {
		match, leader uint64
		ok            bool
	}{
		{0, 0, true},
		{90, 100, true},
		{89, 100, false},
		{100, 100, true},
		{0, 10, false},
		{9, 10, true},
	} {
		err := membership.LearnerCaughtUp(c.match, c.leader)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, messages.ErrLearnerNotReady)) {
			t.Errorf("LearnerCaughtUp(%d, %d) = %v, want ok=%v", c.match, c.leader, err, c.ok)
		}
	}
}
