package actors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/legacysnap"
	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/persistence"
	"github.com/raftkv/node/transport"
)

// getKey reads a key on a member once it can serve, polling with a deadline.
func getKey(t *testing.T, n *Node, key string) messages.Result {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := n.Root().RequestFuture(n.KV(), messages.Get{Key: key}, 5*time.Second).Result()
		if err == nil && res.(messages.Result).Err == nil {
			return res.(messages.Result)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read of %q: %v %v", key, err, res)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// A data dir of the previous layout (a WAL and a snapshot holding the whole
// state, no db) is migrated at start: the db is made from the snapshot, and
// the WAL's entries after it are applied on top.
func TestNodeMigratesPreviousLayout(t *testing.T) {
	dir := t.TempDir()
	writeSnapshotOnly(t, dir, legacysnap.Encode(map[uint64]string{1: "http://127.0.0.1:1"}, nil, map[string]string{"old": "kept"}))

	n := startLoneNode(t, dir, nil)
	defer n.Stop()
	if r := getKey(t, n, "old"); !r.Found || string(r.Value) != "kept" {
		t.Fatalf("after the migration: found=%v value=%q", r.Found, r.Value)
	}
	if res, err := put(n, "new"); err != nil || res.Err != nil {
		t.Fatalf("write after the migration: %v %v", err, res.Err)
	}
	if _, err := os.Stat(filepath.Join(dir, kv.DBFile)); err != nil {
		t.Fatalf("no db after the migration: %v", err)
	}
}

// A member restarts from its db: raft hands the state machine only the
// entries the db lacks, and the state is whole.
func TestNodeRestartsFromTheDB(t *testing.T) {
	dir := t.TempDir()
	n := startLoneNode(t, dir, nil)
	for i := range 50 {
		key := string(rune('a' + i%26))
		deadline := time.Now().Add(10 * time.Second)
		for {
			res, err := put(n, key)
			if err == nil && res.Err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %d: %v %v", i, err, res.Err)
			}
			time.Sleep(10 * time.Millisecond) // polling interval
		}
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := kv.OpenState(kv.StateConfig{Path: filepath.Join(dir, kv.DBFile), Snapshot: nil})
	if err != nil {
		t.Fatal(err)
	}
	applied, _ := st.Applied()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if applied < 50 {
		t.Fatalf("the db holds index %d after a clean stop with 50 writes applied", applied)
	}

	n = startLoneNode(t, dir, nil)
	defer n.Stop()
	if r := getKey(t, n, "a"); !r.Found {
		t.Fatal("a key written before the restart is missing")
	}
	st2, err := n.Root().RequestFuture(n.Raft(), messages.StatusRequest{}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.(messages.Status).Applied; got < applied {
		t.Fatalf("raft started at applied %d, below the db's %d", got, applied)
	}
}

// A db missing while the log was compacted past it is refused: the member
// must not serve an empty state as the current one.
func TestNodeRefusesALostState(t *testing.T) {
	dir := t.TempDir()
	writeSnapshotOnly(t, dir, nil)
	_, err := StartNode(NodeConfig{ID: 1, ClusterID: 1, Peers: map[uint64]string{1: "http://127.0.0.1:1"}, DataDir: dir,
		Transport: func(TransportEnv) (transport.Transport, error) { return nil, errors.New("not reached") }})
	if !errors.Is(err, kv.ErrStateLost) {
		t.Fatalf("StartNode on a data dir without its db: %v, want ErrStateLost", err)
	}
}

// writeSnapshotOnly makes the data dir of a lone member (id 1 of cluster 1)
// whose WAL starts at a snapshot at index 10, term 2, holding data, and has
// nothing after it: the state is the snapshot's, or the db's if there is one.
func writeSnapshotOnly(t *testing.T, dir string, data []byte) {
	t.Helper()
	rp, err := persistence.Open(zap.NewNop(), dir, persistence.Metadata{NodeID: 1, ClusterID: 1})
	if err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	s := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(10)), Term: new(uint64(2)), ConfState: cs}}
	if err := snap.New(zap.NewNop(), persistence.SnapDir(dir)).SaveSnap(s); err != nil {
		t.Fatal(err)
	}
	if err := rp.WAL.SaveSnapshot(&walpb.Snapshot{Index: new(uint64(10)), Term: new(uint64(2)), ConfState: cs}); err != nil {
		t.Fatal(err)
	}
	if err := rp.WAL.Save(&raftpb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(10))}, nil); err != nil {
		t.Fatal(err)
	}
	if err := rp.WAL.Close(); err != nil {
		t.Fatal(err)
	}
}
