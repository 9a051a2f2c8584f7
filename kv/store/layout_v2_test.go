package store

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/messages"
)

// testdata/raftkv-2.db.gz is a db the last build of layout raftkv-2 wrote
// (then copied whole with bbolt's Tx.WriteTo, which drops the preallocated
// tail, and gzipped), with:
//
//	s.Put("a", "1", 2); s.Put("b", "2", 3); s.Put("a", "3", 4)
//	s.Put("c", "gone", 5); s.DeleteRange("c", "", 6)
//	s.Put("d", "\x00\xff\x80", 7)
//	s.AddMember(1, "http://a:2380"); s.SetClients(1, "http://a:2379")
//	s.FirstApply(1<<48 | 5)
//	s.SetApplied(8, 2, ConfState{Voters: [1]}); s.Close()
//
// fixtureV2Digest is what that build's Digest said of it.
const fixtureV2Digest = "ae1d3ee7178df44190766737efdd3d265c4b533d6176075f86821fceba23d6a0"

// fixtureV2 writes the raftkv-2 fixture to a file of a temporary directory.
func fixtureV2(t testing.TB) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "raftkv-2.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawBuckets reads a closed db's layout key and which of the named buckets
// it has.
func rawBuckets(t testing.TB, path string, names ...[]byte) (string, []bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var layout string
	has := make([]bool, len(names))
	_ = db.View(func(tx *bolt.Tx) error {
		layout = string(tx.Bucket(bucketMeta).Get(metaLayout))
		for i, n := range names {
			has[i] = tx.Bucket(n) != nil
		}
		return nil
	})
	return layout, has
}

// A db of layout raftkv-2, as its own build wrote it, is read as it is by
// the read-only opens, and upgraded to raftkv-3 when opened for writing:
// its records, history, members and dedup records read unchanged, and its
// digest is what its build said.
func TestLayoutV2Upgrade(t *testing.T) {
	path := fixtureV2(t)
	leaseBuckets := [][]byte{bucketLeases, bucketLeaseKeys}

	// Read-only, as a received snapshot's db is checked: accepted as it is.
	received := filepath.Join(t.TempDir(), "8.snap.db")
	if err := receiveFile(t, path, received, 8); err != nil {
		t.Fatalf("ReceiveSnapshotDB of a raftkv-2 db: %v", err)
	}
	if err := receiveFile(t, path, filepath.Join(t.TempDir(), "9.snap.db"), 9); !errors.Is(err, ErrSnapshotDB) {
		t.Fatalf("ReceiveSnapshotDB of a raftkv-2 db older than its snapshot: %v", err)
	}
	for _, p := range []string{path, received} {
		if layout, has := rawBuckets(t, p, leaseBuckets...); layout != layoutV2 || slices.Contains(has, true) {
			t.Fatalf("%s: a read-only check changed the db: layout %q, lease buckets %v", p, layout, has)
		}
	}

	s := openStore(t, path)
	if idx, term := s.Applied(); idx != 8 || term != 2 || s.Revision() != 7 || s.Keys() != 3 || s.Compacted() != 0 {
		t.Fatalf("applied %d term %d revision %d keys %d compacted %d", idx, term, s.Revision(), s.Keys(), s.Compacted())
	}
	for key, want := range map[string]messages.KV{
		"a": {Key: "a", Value: []byte("3"), CreateRevision: 2, ModRevision: 4, Version: 2},
		"b": {Key: "b", Value: []byte("2"), CreateRevision: 3, ModRevision: 3, Version: 1},
		"d": {Key: "d", Value: []byte{0, 0xff, 0x80}, CreateRevision: 7, ModRevision: 7, Version: 1},
	} {
		if got := kvOf(t, s, key); !bytes.Equal(got.Value, want.Value) || got.CreateRevision != want.CreateRevision ||
			got.ModRevision != want.ModRevision || got.Version != want.Version || got.Lease != 0 {
			t.Fatalf("%s = %+v, want %+v", key, got, want)
		}
	}
	if d := digestOf(t, s); d != fixtureV2Digest {
		t.Fatalf("digest %s, the raftkv-2 build said %s", d, fixtureV2Digest)
	}
	if u, ok := s.Member(1); !ok || u != "http://a:2380" || !slices.Equal(s.Clients(1), []string{"http://a:2379"}) {
		t.Fatalf("member 1: %q %v, clients %q", u, ok, s.Clients(1))
	}
	if id, ok := s.DedupHigh(1); !ok || id != 1<<48|5 {
		t.Fatalf("DedupHigh(1) = %x %v", id, ok)
	}
	// Before the upgrade is committed a reader sees the raftkv-2 db: its
	// history, and a stream of it.
	evs, through, err := kvtest.ReadEventsAsync(s, 1, 100)
	if err != nil || kvtest.EventNames(evs) != "[a@2 b@3 a@4 c@5 -c@6 d@7]" || through != 7 {
		t.Fatalf("ReadEvents(1) of the raftkv-2 db = %s through %d, %v", kvtest.EventNames(evs), through, err)
	}
	if evs[2].Prev == nil || string(evs[2].Prev.Value) != "1" || evs[4].Prev == nil || string(evs[4].Prev.Value) != "gone" {
		t.Fatalf("previous records: %+v, %+v", evs[2].Prev, evs[4].Prev)
	}
	rc, idx, err := s.SnapshotReader()
	if err != nil || idx != 8 {
		t.Fatalf("SnapshotReader of the raftkv-2 db: %d, %v", idx, err)
	}
	_ = rc.Close()
	if res, err := s.Range(messages.Range{Start: "a", Revision: 3}); err != nil || len(res.KVs) != 1 || string(res.KVs[0].Value) != "1" {
		t.Fatalf("a at 3: %+v %v", res, err)
	}

	// Leases work at once, and the commit makes the db raftkv-3.
	mustGrant(t, s, 5, 10)
	mustPutLease(t, s, "e", "1", 9, 5)
	s.SetApplied(9, 2, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if layout, has := rawBuckets(t, path, leaseBuckets...); layout != layoutVersion || slices.Contains(has, false) {
		t.Fatalf("after the upgrade: layout %q, lease buckets %v", layout, has)
	}
	s = openStore(t, path)
	if got := leaseKeysOf(t, s, 5); !slices.Equal(got, []string{"e"}) || kvOf(t, s, "e").Lease != 5 || kvOf(t, s, "a").Version != 2 {
		t.Fatalf("reopened: lease 5 holds %q, e %+v", got, kvOf(t, s, "e"))
	}
	checkLeaseIndex(t, s)

	// The received copy, installed in a member's store, is upgraded too.
	member := newTestStore(t)
	install(t, member, received)
	if d := digestOf(t, member); d != fixtureV2Digest {
		t.Fatalf("the installed copy's digest %s", d)
	}
	if err := member.GrantLease(1, 5); err != nil {
		t.Fatalf("a grant in an installed raftkv-2 db: %v", err)
	}
	if d := digestOf(t, member); d == fixtureV2Digest {
		t.Fatal("a lease held does not change the digest")
	}
}

// A raftkv-3 db must have its lease buckets; a raftkv-2 db need not.
func TestLayoutV3RequiresLeaseBuckets(t *testing.T) {
	for _, name := range [][]byte{bucketLeases, bucketLeaseKeys} {
		path := filepath.Join(t.TempDir(), "db")
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
		err = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(name) })
		_ = db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if s, _, err := Open(path); !errors.Is(err, ErrBadDB) {
			if s != nil {
				_ = s.Close()
			}
			t.Fatalf("a raftkv-3 db without bucket %s: %v, want ErrBadDB", name, err)
		}
	}
}
