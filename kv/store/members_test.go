package store

import (
	"testing"
)

// A member's records follow its conf changes: added with its URL, given
// client URLs, removed with them, its id then known as removed until it is
// added again.
func TestMembers(t *testing.T) {
	s := newTestStore(t)
	steps := []func() error{
		func() error { return s.AddMember(4, "http://d:1") },
		func() error { return s.SetClients(4, []string{"http://d:2"}) },
		func() error { return s.RemoveMember(4) },
		func() error { return s.SetClients(4, []string{"http://late:2"}) }, // removed meanwhile: ignored
		func() error { return s.AddMember(4, "http://d:3") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if s.members[4] != "http://d:3" || len(s.clients[4]) != 0 || len(s.removed) != 0 {
		t.Fatalf("members %v clients %v removed %v", s.members, s.clients, s.removed)
	}
	ms, removed, err := readMembers(s.be.Tx())
	if err != nil || ms[4].peerURL != "http://d:3" || len(ms[4].clientURLs) != 0 || len(removed) != 0 {
		t.Fatalf("db members %v removed %v (%v)", ms, removed, err)
	}
}
