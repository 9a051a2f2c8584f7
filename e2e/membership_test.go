package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
)

// A member added with POST /<id> and started with --join receives the data
// written before it joined, and serves reads and writes like the others.
func TestAddedMemberReceivesAllData(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(c.members...)
	data := make(map[string]string)
	for i := range 30 {
		m := c.members[i%3]
		key := fmt.Sprintf("/before-join-%02d", i)
		data[key] = "value of " + key
		mustWrite(t, m.base, key, data[key], http.StatusNoContent)
	}

	m4 := c.newMember()
	via := c.others(lead)[0] // a follower forwards the conf change to the leader
	if r := call(http.MethodPost, fmt.Sprintf("%s/%d", via.base, m4.id), m4.peerURL); r.code != http.StatusNoContent {
		t.Fatalf("POST /%d to %s: %s, want 204", m4.id, via.name(), r)
	}
	if r := call(http.MethodPost, fmt.Sprintf("%s/%d", lead.base, m4.id), m4.peerURL); r.code != http.StatusConflict {
		t.Fatalf("POST /%d a second time: %s, want 409", m4.id, r)
	}
	added := appliedIndex(t, via) // via answered once it applied the addition
	c.start(m4, true)

	checkAll(t, data, m4)
	c.leader(c.members...)
	waitApplied(t, added, c.members...)
	for _, m := range c.members {
		waitMembers(t, m, func(members map[uint64]string) error {
			if len(members) != 4 || members[m4.id] != m4.peerURL {
				return fmt.Errorf("%s knows members %v, want 4 with %d at %s", m.name(), members, m4.id, m4.peerURL)
			}
			return nil
		})
	}
	mustWrite(t, m4.base, "/after-join", "written through the new member", http.StatusNoContent)
	for _, m := range c.others(m4) {
		mustRead(t, m.base, "/after-join", "written through the new member")
	}
}

// A member removed with DELETE /<id> stops by itself, exits 0 and says why;
// the two that remain go on serving. Removing the leader makes the others
// elect a new one.
func TestRemovedMemberExitsByItself(t *testing.T) {
	for _, tc := range []struct {
		name         string
		removeLeader bool
	}{
		{"follower", false},
		{"leader", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3)
			lead := c.leader(c.members...)
			target := c.others(lead)[0]
			via := lead
			if tc.removeLeader {
				target, via = lead, c.others(lead)[0]
			}
			mustWrite(t, via.base, "/before-removal", "kept", http.StatusNoContent)

			if r := call(http.MethodDelete, fmt.Sprintf("%s/%d", via.base, target.id), ""); r.code != http.StatusNoContent {
				t.Fatalf("DELETE /%d through %s: %s, want 204", target.id, via.name(), r)
			}
			removed := appliedIndex(t, via) // via answered once it applied the removal
			target.p.WaitExit(t, 0, 20*time.Second)
			if !strings.Contains(target.p.Output(), "removed from the cluster") {
				t.Fatalf("%s exited 0 without saying it was removed from the cluster", target.name())
			}

			rest := c.others(target)
			c.leader(rest...)
			waitApplied(t, removed, rest...)
			for _, m := range rest {
				waitMembers(t, m, func(members map[uint64]string) error {
					if ids := slices.Sorted(maps.Keys(members)); slices.Contains(ids, target.id) || len(ids) != 2 {
						return fmt.Errorf("%s still knows members %v after removing %d", m.name(), ids, target.id)
					}
					return nil
				})
			}
			if r := call(http.MethodDelete, fmt.Sprintf("%s/%d", rest[0].base, target.id), ""); r.code != http.StatusNotFound {
				t.Errorf("DELETE /%d a second time: %s, want 404", target.id, r)
			}
			for _, w := range rest {
				key := fmt.Sprintf("/after-removal-%d", w.id)
				mustWrite(t, w.base, key, "written by "+w.name(), http.StatusNoContent)
				for _, r := range c.others(target, w) {
					mustRead(t, r.base, key, "written by "+w.name())
					mustRead(t, r.base, "/before-removal", "kept")
				}
			}
		})
	}
}

// appliedIndex is m's applied index now. A membership change is answered by
// the member that was asked once that member applied it, so the index read
// from it after the answer is at least the change's.
func appliedIndex(t *testing.T, m *member) uint64 {
	t.Helper()
	st, err := getStatus(m.base)
	if err != nil {
		t.Fatal(err)
	}
	return st.Applied
}

// waitMembers polls m's member list (/v1/status) until ok accepts it. The
// raft actor takes a conf change once the state machine applies it, and
// the index /v1/status reports applied may run a step ahead of that: the
// list is polled, not read once; a list that never comes right fails at
// the deadline.
func waitMembers(t *testing.T, m *member, ok func(map[uint64]string) error) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, m.name()+"'s member list", func() error {
		st, err := getStatus(m.base)
		if err != nil {
			return err
		}
		return ok(st.Members)
	})
}

// waitApplied waits until each of ms has applied index. Only then does its
// own view of the membership (/v1/members, the members of /v1/status: the
// member's applied state, not a linearizable read) hold a change applied
// at or before index.
func waitApplied(t *testing.T, index uint64, ms ...*member) {
	t.Helper()
	for _, m := range ms {
		testutil.Eventually(t, 20*time.Second, fmt.Sprintf("%s to apply index %d", m.name(), index), func() error {
			st, err := getStatus(m.base)
			if err != nil {
				return err
			}
			if st.Applied >= index {
				return nil
			}
			return fmt.Errorf("applied %d", st.Applied)
		})
	}
}
