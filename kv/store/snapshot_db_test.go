package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/internal/testutil"
)

// The db streams from a read transaction of its last commit, and a
// follower's copy, checked and renamed into place, holds the same state.
func TestSnapshotDBRoundTrip(t *testing.T) {
	src := newTestStore(t)
	for i := range 1000 {
		if err := src.Put(fmt.Sprintf("key-%04d", i), bytes.Repeat([]byte{byte(i)}, 100), uint64(i+1), 0); err != nil {
			t.Fatal(err)
		}
	}
	src.SetApplied(1000, 3, &raftpb.ConfState{Voters: []uint64{1}})
	if err := src.Commit(); err != nil {
		t.Fatal(err)
	}
	// Written after the commit: not in the stream.
	if err := src.Put("later", []byte("x"), 1001, 0); err != nil {
		t.Fatal(err)
	}
	src.SetApplied(1001, 3, nil)
	rc, held, err := src.SnapshotReader()
	if err != nil {
		t.Fatal(err)
	}
	if held != 1000 {
		t.Fatalf("the stream holds index %d, want 1000 (the last commit's)", held)
	}
	dst := filepath.Join(t.TempDir(), "0000000000000390.snap.db")
	if err := ReceiveSnapshotDB(dst, 900, rc); err != nil {
		t.Fatalf("ReceiveSnapshotDB: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}

	follower := newTestStore(t)
	mustPut(t, follower, "follower's own", "y", 1)
	install(t, follower, dst)
	if idx, _ := follower.Applied(); idx != 1000 {
		t.Fatalf("installed db at %d, want 1000", idx)
	}
	if r, ok := mustGet(t, follower, "key-0999"); !ok || !bytes.Equal(r.value, bytes.Repeat([]byte{231}, 100)) {
		t.Fatalf("key-0999 = %v %v", r, ok)
	}
	if _, ok := mustGet(t, follower, "later"); ok {
		t.Fatal("an uncommitted write reached the follower")
	}
	if _, ok := mustGet(t, follower, "follower's own"); ok {
		t.Fatal("the follower's own state survived the install")
	}
	if follower.Keys() != 1000 || follower.Revision() != 1000 || len(follower.TakeEvents()) != 0 {
		t.Fatalf("installed: %d keys at revision %d, want 1000 at 1000, and no events", follower.Keys(), follower.Revision())
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the received db is still at %s after its install", dst)
	}
}

// A stream cut midway, one that is not a db, or a db older than its
// snapshot is refused, and nothing of it stays on disk.
func TestReceiveSnapshotDBRefusals(t *testing.T) {
	src := newTestStore(t)
	src.SetApplied(50, 1, &raftpb.ConfState{Voters: []uint64{1}})
	if err := src.Commit(); err != nil {
		t.Fatal(err)
	}
	whole := func() []byte {
		rc, _, err := src.SnapshotReader()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	for _, c := range []struct {
		name  string
		r     io.Reader
		index uint64
	}{
		{"cut midway", io.MultiReader(bytes.NewReader(whole[:len(whole)/2]), errReader{io.ErrUnexpectedEOF}), 50},
		{"short", bytes.NewReader(whole[:len(whole)/2]), 50},
		{"not a db", bytes.NewReader(bytes.Repeat([]byte("x"), 8192)), 50},
		{"older than its snapshot", bytes.NewReader(whole), 51},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A db cut short past its meta pages names pages the file
			// does not hold; reading one through the mmap faults
			// (SIGBUS), which no recover catches: run the case in a
			// process of its own, so that a fault fails it alone.
			if inChild := testutil.Isolate(t); !inChild {
				return
			}
			dir := t.TempDir()
			dst := filepath.Join(dir, "x.snap.db")
			if err := ReceiveSnapshotDB(dst, c.index, c.r); !errors.Is(err, ErrSnapshotDB) {
				t.Fatalf("ReceiveSnapshotDB: %v, want ErrSnapshotDB", err)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
	// The whole stream, at its index, is taken: the refusals above are
	// the cases', not the stream's.
	dst := filepath.Join(t.TempDir(), "x.snap.db")
	if err := ReceiveSnapshotDB(dst, 50, bytes.NewReader(whole)); err != nil {
		t.Fatalf("ReceiveSnapshotDB of the whole stream: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
