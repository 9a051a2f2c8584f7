package kv

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
)

// A db a newer binary wrote is sound, only not this binary's: OpenState
// refuses it as it is, neither moved aside and rebuilt from the log (which
// may hold entries this binary does not know) nor reported lost, with or
// without a snapshot.
func TestOpenStateRefusesANewerLayout(t *testing.T) {
	for _, c := range []struct {
		name  string
		index uint64 // of the snapshot; 0 for none
	}{{"the log holds every entry", 0}, {"the log was compacted", 40}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := OpenState(testStateConfig(dir, apply.FormatNative, nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, DBFile)
			setLayout(t, path, "raftkv-4")
			var snap *raftpb.Snapshot
			if c.index > 0 {
				snap = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
					Index: new(c.index), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}
			}
			_, err = OpenState(testStateConfig(dir, apply.FormatNative, snap))
			if !errors.Is(err, store.ErrNewerLayout) || errors.Is(err, ErrStateLost) || errors.Is(err, store.ErrBadDB) {
				t.Fatalf("OpenState: %v, want ErrNewerLayout alone", err)
			}
			if aside, _ := filepath.Glob(path + ".unreadable-*"); len(aside) != 0 {
				t.Errorf("the newer db was moved aside: %v", aside)
			}
			if got := setLayout(t, path, ""); got != "raftkv-4" {
				t.Errorf("layout %q after the refusal, want raftkv-4", got)
			}
		})
	}
}

// setLayout writes layout into the closed db at path ("" writes nothing)
// and returns the one it had.
func setLayout(t *testing.T, path, layout string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var old string
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		old = string(meta.Get([]byte("layout")))
		if layout == "" {
			return nil
		}
		return meta.Put([]byte("layout"), []byte(layout))
	})
	if err != nil {
		t.Fatal(err)
	}
	return old
}
