package persistence

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// SnapStorage answers a snapshot without data as temporarily unavailable
// while it has the data read, once per snapshot; serves the read snapshot
// until it is released or superseded; and retries a failed read.
func TestSnapStorageLoadsDataOnDemand(t *testing.T) {
	ms := raft.NewMemoryStorage()
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	apply := func(index uint64) {
		t.Helper()
		if err := ms.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(uint64(2)), ConfState: cs}}); err != nil {
			t.Fatal(err)
		}
	}
	full := func(index uint64) *raftpb.Snapshot {
		return &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(uint64(2)), ConfState: cs}}
	}
	s := NewSnapStorage(ms, nil)

	if snap, err := s.Snapshot(); err != nil || snap.GetMetadata().GetIndex() != 0 {
		t.Fatalf("no snapshot yet: got %v, %v", snap, err)
	}
	apply(10)
	// Without a loader, snapshots have no data of their own (the native
	// format's db goes with them): the metadata is the whole snapshot.
	if snap, err := s.Snapshot(); err != nil || snap.GetMetadata().GetIndex() != 10 || len(snap.GetData()) != 0 {
		t.Fatalf("without a loader: %v, %v; want the metadata at 10", snap, err)
	}

	type request struct{ index, term uint64 }
	var asked []request
	s.SetLoader(func(index, term uint64) { asked = append(asked, request{index, term}) })
	for range 2 {
		if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) {
			t.Fatalf("while loading: %v, want unavailable", err)
		}
	}
	if len(asked) != 1 || asked[0] != (request{10, 2}) {
		t.Fatalf("loader asked %v, want once for index 10 term 2", asked)
	}

	s.Loaded(messages.SnapshotLoaded{Index: 10, Err: errors.New("disk")})
	if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) || len(asked) != 2 {
		t.Fatalf("after a failed read: %v with %d requests, want a new request", err, len(asked))
	}
	s.Loaded(messages.SnapshotLoaded{Index: 10, Snapshot: full(10)})
	got, err := s.Snapshot()
	if err != nil || !proto.Equal(got, full(10)) {
		t.Fatalf("after the read: %v, %v, want the snapshot with data", got, err)
	}
	if len(asked) != 2 {
		t.Fatalf("a held snapshot was asked for again: %v", asked)
	}

	s.Release()
	if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) || len(asked) != 3 {
		t.Fatalf("after Release: %v with %d requests, want a new read", err, len(asked))
	}

	apply(20) // a newer snapshot: the one being read is stale
	// A late answer for the old one is dropped, not held: the next call
	// still asks for the new one.
	s.Loaded(messages.SnapshotLoaded{Index: 10, Snapshot: full(10)})
	if s.loaded != nil {
		t.Fatal("a stale snapshot's data is held")
	}
	if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) || len(asked) != 4 || asked[3] != (request{20, 2}) {
		t.Fatalf("after a newer snapshot: %v, requests %v", err, asked)
	}
	s.Loaded(messages.SnapshotLoaded{Index: 20, Snapshot: full(20)})
	if got, err := s.Snapshot(); err != nil || !proto.Equal(got, full(20)) {
		t.Fatalf("got %v, %v, want index 20 with its data", got, err)
	}
}
