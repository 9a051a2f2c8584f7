package actors

import (
	"errors"
	"slices"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/persistence"
)

// confStateAt replays the conf changes of the log after the db's applied
// index onto the db's configuration; a joint change refuses forcing.
func TestConfStateAt(t *testing.T) {
	cc := func(index uint64, typ raftpb.ConfChangeType, id uint64) *raftpb.Entry {
		data, err := proto.Marshal(&raftpb.ConfChange{Type: typ.Enum(), NodeId: new(id)})
		if err != nil {
			t.Fatal(err)
		}
		return &raftpb.Entry{Type: raftpb.EntryConfChange.Enum(), Index: new(index), Term: new(uint64(1)), Data: data}
	}
	normal := func(index uint64) *raftpb.Entry {
		return &raftpb.Entry{Type: raftpb.EntryNormal.Enum(), Index: new(index), Term: new(uint64(1))}
	}
	joint := &raftpb.Entry{Type: raftpb.EntryConfChangeV2.Enum(), Index: new(uint64(2)), Term: new(uint64(1))}
	db := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	for _, tc := range []struct {
		name     string
		log      []*raftpb.Entry
		voters   []uint64
		learners []uint64
		err      error
	}{
		{"nothing after the db", nil, []uint64{1, 2, 3}, nil, nil},
		{"writes only", []*raftpb.Entry{normal(1), normal(2)}, []uint64{1, 2, 3}, nil, nil},
		{"a learner added, a voter removed", []*raftpb.Entry{cc(1, raftpb.ConfChangeAddLearnerNode, 4), normal(2), cc(3, raftpb.ConfChangeRemoveNode, 2)}, []uint64{1, 3}, []uint64{4}, nil},
		{"a learner promoted", []*raftpb.Entry{cc(1, raftpb.ConfChangeAddLearnerNode, 4), cc(2, raftpb.ConfChangeAddNode, 4)}, []uint64{1, 2, 3, 4}, nil, nil},
		{"a joint change", []*raftpb.Entry{normal(1), joint}, nil, nil, ErrCannotForce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := raft.NewMemoryStorage()
			if err := ms.Append(tc.log); err != nil {
				t.Fatal(err)
			}
			rp := &persistence.Replay{Storage: ms}
			last, _ := ms.LastIndex()
			cs, err := confStateAt(rp, db, 0, last)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if !slices.Equal(cs.GetVoters(), tc.voters) || !slices.Equal(cs.GetLearners(), tc.learners) {
				t.Fatalf("voters %v learners %v, want %v and %v", cs.GetVoters(), cs.GetLearners(), tc.voters, tc.learners)
			}
		})
	}
}
