package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/messages"
)

// downgradeToV1 makes the db at path what the previous layout wrote: its
// layout key, no history bucket, no revision or history counters.
func downgradeToV1(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{metaRevision, metaCompacted, metaHistEvents, metaHistBytes} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		if err := meta.Put(metaLayout, []byte(layoutV1)); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketHistory)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawLayout reads a closed db's layout key and whether it has a history.
func rawLayout(t *testing.T, path string) (string, bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var layout string
	var hist bool
	_ = db.View(func(tx *bolt.Tx) error {
		layout = string(tx.Bucket(bucketMeta).Get(metaLayout))
		hist = tx.Bucket(bucketHistory) != nil
		return nil
	})
	return layout, hist
}

// receiveFile is ReceiveSnapshotDB of the db file at src, into dst.
func receiveFile(t *testing.T, src, dst string, index uint64) error {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ReceiveSnapshotDB(dst, index, f)
}

// A db of the previous layout ("raftkv-1": no history, no revision) is
// accepted as a received snapshot db, and upgraded when opened for
// writing: its revision and compacted revision are its applied index, and
// its history starts there.
func TestLayoutV1Upgrade(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "db")
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "a", "1", 3)
	mustPut(t, s, "b", "2", 7)
	s.SetApplied(10, 1, &raftpb.ConfState{Voters: []uint64{1}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downgradeToV1(t, path)

	// Read-only, as a received snapshot db is checked: accepted as it is.
	received := filepath.Join(t.TempDir(), "10.snap.db")
	if err := receiveFile(t, path, received, 10); err != nil {
		t.Fatalf("ReceiveSnapshotDB of a raftkv-1 db: %v", err)
	}
	if err := receiveFile(t, path, filepath.Join(t.TempDir(), "11.snap.db"), 11); !errors.Is(err, ErrSnapshotDB) {
		t.Fatalf("ReceiveSnapshotDB of a raftkv-1 db older than its snapshot: %v", err)
	}
	err = backend.Check(path, func(tx *bolt.Tx) error {
		m, err := readMeta(tx, false)
		if err != nil {
			return err
		}
		if m.applied != 10 || m.revision != 10 || m.compacted != 10 || m.keys != 2 {
			return fmt.Errorf("meta %+v, want applied, revision and compacted 10, 2 keys", m)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("readMeta of a raftkv-1 db: %v", err)
	}
	for _, p := range []string{path, received} {
		if layout, hist := rawLayout(t, p); layout != layoutV1 || hist {
			t.Fatalf("%s: a read-only check changed the db: layout %q, history %v", p, layout, hist)
		}
	}

	// Opened for writing: upgraded.
	s, fresh, err := Open(path)
	if err != nil || fresh {
		t.Fatalf("Open of a raftkv-1 db: fresh %v, %v", fresh, err)
	}
	if m := s.meta; m.revision != 10 || m.compacted != 10 || m.applied != 10 || m.keys != 2 {
		t.Fatalf("meta after the upgrade %+v", m)
	}
	if s.be.Tx().Bucket(bucketHistory) == nil {
		t.Fatal("no history bucket after the upgrade")
	}
	if kv := kvOf(t, s, "b"); kv.ModRevision != 7 || kv.Version != 1 {
		t.Fatalf("b after the upgrade: %+v", kv)
	}
	// Before the upgrade is committed a reader sees the old layout, which
	// has no history: reads from after its revision find nothing.
	if evs, through, err := kvtest.ReadEventsAsync(s, 11, 10); err != nil || len(evs) != 0 || through != 10 {
		t.Fatalf("ReadEvents(11) of the raftkv-1 db = %s through %d, %v; want nothing through 10", kvtest.EventNames(evs), through, err)
	}
	if _, _, err := kvtest.ReadEventsAsync(s, 10, 10); !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("ReadEvents(10) of the raftkv-1 db = %v, want ErrCompacted", err)
	}
	if _, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: 9}); !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("a range at 9: %v, want ErrCompacted", err)
	}
	if res, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: 10}); err != nil || len(res.KVs) != 2 {
		t.Fatalf("a range at 10: %+v %v", res, err)
	}
	// Writes after it have a history.
	mustPut(t, s, "a", "new", 11)
	s.SetApplied(11, 1, nil)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if evs, through, err := kvtest.ReadEventsAsync(s, 11, 10); err != nil || kvtest.EventNames(evs) != "[a@11]" || through != 11 {
		t.Fatalf("ReadEvents(11) after a write = %s through %d, %v", kvtest.EventNames(evs), through, err)
	}
	if res, err := s.Range(messages.Range{Start: "a", Revision: 10}); err != nil || len(res.KVs) != 1 || string(res.KVs[0].Value) != "1" {
		t.Fatalf("a at 10 after the write at 11: %+v %v", res, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if layout, hist := rawLayout(t, path); layout != layoutVersion || !hist {
		t.Fatalf("after the upgrade: layout %q, history %v; want %q with a history", layout, hist, layoutVersion)
	}
	s = openStore(t, path)
	if m := s.meta; m.revision != 11 || m.compacted != 10 || m.histEvents != 1 {
		t.Fatalf("reopened after the upgrade: meta %+v", m)
	}
	// Straight to raftkv-3: the lease buckets too.
	if err := s.GrantLease(1, 10); err != nil {
		t.Fatalf("a grant after the upgrade: %v", err)
	}
	mustPutLease(t, s, "a", "leased", 12, 1)

	// The received copy, installed in a member's store, is upgraded too.
	member := newTestStore(t)
	install(t, member, received)
	if member.Revision() != 10 || member.Compacted() != 10 || member.be.Tx().Bucket(bucketHistory) == nil {
		t.Fatalf("a raftkv-1 db installed: revision %d, compacted %d; want 10, 10 and a history", member.Revision(), member.Compacted())
	}
}

// A db this package cannot read is ErrBadDB, not misread: another
// layout, a meta bucket without the buckets it names, not a db at all.
func TestOpenRefusesOtherLayouts(t *testing.T) {
	if got := layoutPrefix + strconv.Itoa(layoutNumber); got != layoutVersion {
		t.Fatalf("layoutPrefix and layoutNumber spell %s, the layout is %s: a newer layout would be taken for this one's", got, layoutVersion)
	}
	for _, c := range []struct {
		name  string
		spoil func(tx *bolt.Tx) error
		junk  bool
		want  error // nil: ErrBadDB
	}{
		{name: "a layout no binary wrote", spoil: func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaLayout, []byte("raftkv-9x")) }},
		// A newer binary's db is sound: not ErrBadDB, which has it moved
		// aside (kv.OpenState).
		{name: "a newer layout", spoil: func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaLayout, []byte("raftkv-9")) }, want: ErrNewerLayout},
		{name: "no kv bucket", spoil: func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketKV) }},
		{name: "no history bucket in a raftkv-2 db", spoil: func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketHistory) }},
		{name: "a conf state that does not decode", spoil: func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaConfState, []byte{0xff}) }},
		{name: "not a db", junk: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			if c.junk {
				if err := os.WriteFile(path, make([]byte, 8192), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				s, _, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = db.Update(c.spoil)
				_ = db.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			want := c.want
			if want == nil {
				want = ErrBadDB
			}
			s, _, err := Open(path)
			if !errors.Is(err, want) || (want != ErrBadDB && errors.Is(err, ErrBadDB)) {
				if s != nil {
					_ = s.Close()
				}
				t.Fatalf("Open: %v, want %v only", err, want)
			}
		})
	}
}
