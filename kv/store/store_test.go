package store

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/backend/backendtest"
	"github.com/raftkv/node/messages"
)

// newTestStore is an empty store over a backend in a temporary directory,
// closed when the test ends.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	s, err := New(backendtest.NewTmpBackend(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// install installs the db at path into s and closes the file it retired.
func install(t testing.TB, s *Store, path string) {
	t.Helper()
	retired, err := s.Install(path)
	if err != nil {
		t.Fatalf("Install %s: %v", path, err)
	}
	if retired != nil {
		if err := retired.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// openStore opens the store at path, closed when the test ends (a test
// that closes it first is fine).
func openStore(t testing.TB, path string) *Store {
	t.Helper()
	s, _, err := Open(path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t testing.TB, s *Store, key, value string, rev uint64) {
	t.Helper()
	if err := s.Put(key, []byte(value), rev, 0); err != nil {
		t.Fatalf("put %q at %d: %v", key, rev, err)
	}
}

func mustDel(t testing.TB, s *Store, key string, rev uint64) {
	t.Helper()
	if _, err := s.DeleteRange(key, "", rev); err != nil {
		t.Fatalf("delete %q at %d: %v", key, rev, err)
	}
}

// mustGet reads key's record as written, committed or not.
func mustGet(t testing.TB, s *Store, key string) (record, bool) {
	t.Helper()
	r, ok, err := s.get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return r, ok
}

// kvOf reads key as the store holds it (zero when absent).
func kvOf(t testing.TB, s *Store, key string) messages.KV {
	t.Helper()
	kv, ok, err := s.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !ok {
		return messages.KV{}
	}
	return kv
}

// committedMeta reads the meta data of s's last commit: what a restart, or
// a follower the db is streamed to, would find.
func committedMeta(s *Store) (meta, error) {
	tx, err := s.be.ReadTx()
	if err != nil {
		return meta{}, err
	}
	defer func() { _ = tx.Rollback() }()
	return readMeta(tx, false)
}

// stateData reads every key and value of the batch transaction.
func stateData(t testing.TB, s *Store) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := ForEach(s.be.Tx(), func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A key's record carries the index that created it, the index of its last
// write and its count of writes; a delete ends its life, and a put after it
// starts a new one.
func TestRevisions(t *testing.T) {
	s := newTestStore(t)
	steps := []struct {
		op    string
		index uint64
		want  *record
	}{
		{"put a", 5, &record{createRev: 5, modRev: 5, version: 1, value: []byte("a")}},
		{"put b", 7, &record{createRev: 5, modRev: 7, version: 2, value: []byte("b")}},
		{"del", 8, nil},
		{"put c", 9, &record{createRev: 9, modRev: 9, version: 1, value: []byte("c")}},
	}
	for _, st := range steps {
		if st.op == "del" {
			n, err := s.DeleteRange("k", "", st.index)
			if err != nil || n != 1 {
				t.Fatalf("%s: deleted %d, %v; want 1", st.op, n, err)
			}
		} else if err := s.Put("k", []byte(st.op[4:]), st.index, 0); err != nil {
			t.Fatalf("%s: %v", st.op, err)
		}
		got, ok := mustGet(t, s, "k")
		if st.want == nil {
			if ok {
				t.Fatalf("after %s: %+v, want absent", st.op, got)
			}
			continue
		}
		if !ok || got.createRev != st.want.createRev || got.modRev != st.want.modRev || got.version != st.want.version || !bytes.Equal(got.value, st.want.value) {
			t.Fatalf("after %s: %+v, want %+v", st.op, got, *st.want)
		}
	}
	if s.meta.keys != 1 || s.meta.used != Cost("k", []byte("c")) {
		t.Fatalf("keys %d used %d, want 1 and %d", s.meta.keys, s.meta.used, Cost("k", []byte("c")))
	}
	if s.Keys() != 1 || s.Used() != s.meta.used || s.Revision() != 9 {
		t.Fatalf("Keys %d Used %d Revision %d, want 1, %d, 9", s.Keys(), s.Used(), s.Revision(), s.meta.used)
	}
}

// What a commit made durable is there after a reopen, meta data included;
// what was not committed is not.
func TestCommitAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, fresh, err := Open(path)
	if err != nil || !fresh {
		t.Fatalf("Open: fresh %v, %v; want a fresh db", fresh, err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	if err := s.Put("a", []byte("1"), 3, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMember(2, "http://b:2"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetClients(2, []string{"http://b:3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(4); err != nil {
		t.Fatal(err)
	}
	s.SetApplied(3, 2, cs)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("uncommitted", []byte("x"), 4, 0); err != nil {
		t.Fatal(err)
	}
	s.SetApplied(4, 2, nil)
	// Close commits: simulate a crash instead, as an owner that failed.
	s.Fail()
	if err := s.Commit(); err == nil {
		t.Fatal("a failed store committed")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, fresh, err = Open(path)
	if err != nil || fresh {
		t.Fatalf("reopen: fresh %v, %v", fresh, err)
	}
	defer s.Close()
	if idx, term := s.Applied(); idx != 3 || term != 2 {
		t.Fatalf("applied %d term %d, want 3 and 2", idx, term)
	}
	if err := s.ConfState().Equivalent(cs); err != nil {
		t.Fatalf("conf state: %v", err)
	}
	if _, ok := mustGet(t, s, "uncommitted"); ok {
		t.Fatal("an uncommitted write survived")
	}
	if r, ok := mustGet(t, s, "a"); !ok || string(r.value) != "1" {
		t.Fatalf("a = %+v %v", r, ok)
	}
	if m := s.Members(); len(m) != 1 || m[2] != "http://b:2" || !slices.Equal(s.Clients(2), []string{"http://b:3"}) {
		t.Fatalf("members %v, clients %v", m, s.clients)
	}
	if !slices.Equal(s.Removed(), []uint64{4}) || !s.IsRemoved(4) {
		t.Fatalf("removed %v", s.Removed())
	}
	if s.Revision() != 3 || s.Keys() != 1 {
		t.Fatalf("revision %d keys %d, want 3 and 1", s.Revision(), s.Keys())
	}
}
