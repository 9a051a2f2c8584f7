package persistence

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// writeSnapFile writes what etcd's snap package writes: the same bytes as
// SaveSnap, which Read and Load accept, for snapshots small and large.
func TestWriteSnapFileMatchesEtcd(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: multi-byte lengths
	tests := []struct {
		name string
		s    *raftpb.Snapshot
	}{
		{"empty data", &raftpb.Snapshot{Data: []byte{}, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(3)), Term: new(uint64(1)),
			ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}},
		{"small", &raftpb.Snapshot{Data: []byte("RKV1 state"), Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(1234)), Term: new(uint64(7)),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}}},
		{"large", &raftpb.Snapshot{Data: big, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(1 << 40)), Term: new(uint64(300)),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ours, theirs := t.TempDir(), t.TempDir()
			if err := writeSnapFile(ours, tc.s); err != nil {
				t.Fatal(err)
			}
			if err := snap.New(zap.NewNop(), theirs).SaveSnap(tc.s); err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(mustGlob(t, filepath.Join(theirs, "*.snap")))
			a, err := os.ReadFile(filepath.Join(ours, name))
			if err != nil {
				t.Fatalf("our file has another name than etcd's %s: %v", name, err)
			}
			b, err := os.ReadFile(filepath.Join(theirs, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("file differs from etcd's: %d bytes vs %d", len(a), len(b))
			}
			got, err := snap.New(zap.NewNop(), ours).Load()
			if err != nil || !proto.Equal(got, tc.s) {
				t.Fatalf("snap.Load of our file: %v", err)
			}
		})
	}
}

func mustGlob(t *testing.T, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) != 1 {
		t.Fatalf("glob %s: %v %v", pattern, m, err)
	}
	return m[0]
}
