package store

import (
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// Rebase keeps the data (keys, revisions, leases, history) and drops what
// belonged to the old cluster: its members, client URLs, removed ids,
// dedup records; the configuration becomes the new members, and all of it
// survives a reopen.
func TestRebase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openStore(t, path)
	for _, step := range []func() error{
		func() error { return s.AddMember(1, "http://old:1") },
		func() error { return s.AddMember(2, "http://old:2") },
		func() error { return s.SetClients(1, []string{"http://old:11"}) },
		func() error { return s.RemoveMember(2) },
		func() error { return s.Put("k", []byte("v"), 7, 0) },
		func() error { return s.GrantLease(5, 60) },
		func() error { _, err := s.FirstApply(rid(1, 3)); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	s.SetApplied(9, 4, &raftpb.ConfState{Voters: []uint64{1}})
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	digest, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}

	if err := s.Rebase(map[uint64]string{2: "http://new:2", 3: "http://new:3"}, 6); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path)
	if got, want := s.Members(), map[uint64]string{2: "http://new:2", 3: "http://new:3"}; len(got) != 2 || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("members %v, want %v", got, want)
	}
	if len(s.Removed()) != 0 || s.Clients(1) != nil || s.Clients(2) != nil {
		t.Errorf("removed %v, clients of 1 %v: the old cluster's records stayed", s.Removed(), s.Clients(1))
	}
	if _, ok := s.DedupHigh(1); ok {
		t.Error("the old cluster's dedup records stayed")
	}
	if index, term := s.Applied(); index != 9 || term != 6 {
		t.Errorf("applied %d in term %d, want 9 in 6", index, term)
	}
	if cs := s.ConfState(); !slices.Equal(cs.GetVoters(), []uint64{2, 3}) || len(cs.GetLearners()) != 0 {
		t.Errorf("configuration %v, want voters [2 3]", cs)
	}
	if got, err := s.Digest(); err != nil || got != digest {
		t.Errorf("digest %s (%v), want the one before the rebase, %s", got, err, digest)
	}
	if s.Revision() != 7 {
		t.Errorf("revision %d, want 7", s.Revision())
	}
}
