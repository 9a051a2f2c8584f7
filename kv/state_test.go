package kv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/internal/legacysnap"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// testStateConfig is the state of a member in dir, with the snapshot dbs
// named as persistence names them.
func testStateConfig(dir string, f apply.Format, snap *raftpb.Snapshot) StateConfig {
	return StateConfig{
		Path: filepath.Join(dir, DBFile), Format: f, Snapshot: snap,
		SnapshotDB: func(i uint64) string { return filepath.Join(dir, "snap", fmt.Sprintf("%016x.snap.db", i)) },
	}
}

// openTestState opens a fresh state in a temporary directory, closed when
// the test ends.
func openTestState(t testing.TB, f apply.Format) *State {
	t.Helper()
	s, err := OpenState(testStateConfig(t.TempDir(), f, nil))
	if err != nil {
		t.Fatalf("OpenState: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// mustGet reads key as s holds it, committed or not.
func mustGet(t testing.TB, s *store.Store, key string) (messages.KV, bool) {
	t.Helper()
	kv, ok, err := s.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return kv, ok
}

// legacySnapshot writes a snapshot of the previous layout (package apply's
// legacy.go), as the earlier versions of this package wrote them, for the
// migration tests. That legacy.go reads it as version 3 is checked there.
func legacySnapshot(t testing.TB, members map[uint64]string, removed []uint64, data map[string]string) []byte {
	t.Helper()
	b := legacysnap.Encode(members, removed, data)
	if !bytes.HasPrefix(b, []byte("RKV3")) {
		t.Fatalf("internal/legacysnap writes %q, not a snapshot of version 3", b[:4])
	}
	return b
}

// fmtKVs spells keys with their values and revisions, for comparisons.
func fmtKVs(kvs []messages.KV) string {
	var b strings.Builder
	for _, kv := range kvs {
		fmt.Fprintf(&b, "[%q=%q c%d m%d v%d]", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	return b.String()
}

// checkRestoredHistory checks a state restored whole at index: revision and
// compacted revision at index, no event, every key written at index.
func checkRestoredHistory(t *testing.T, st *State, index uint64) {
	t.Helper()
	if err := restoredHistoryErr(st, index); err != nil {
		t.Fatal(err)
	}
}

// restoredHistoryErr is checkRestoredHistory for the kv actor's goroutine,
// which may not call t.Fatal. (That the history's byte count and bucket
// are empty too is store's TestResetStartsHistory.)
func restoredHistoryErr(st *State, index uint64) error {
	s := st.st
	if s.Revision() != index || s.Compacted() != index || s.HistoryEvents() != 0 {
		return fmt.Errorf("revision %d, compacted %d, %d history events; want revision and compacted %d, no history",
			s.Revision(), s.Compacted(), s.HistoryEvents(), index)
	}
	if st.Revision() != index {
		return fmt.Errorf("Revision() = %d, want %d", st.Revision(), index)
	}
	if kv, ok, err := s.Get("k"); err != nil || !ok || kv.CreateRevision != index || kv.ModRevision != index || kv.Version != 1 || string(kv.Value) != "v" {
		return fmt.Errorf("k restored as %+v (%v, %v)", kv, ok, err)
	}
	if evs, through, err := kvtest.ReadEventsAsync(st, index+1, 10); err != nil || len(evs) != 0 || through != index {
		return fmt.Errorf("ReadEvents(%d) = %s through %d, %v; want nothing, through %d", index+1, kvtest.EventNames(evs), through, err, index)
	}
	if _, _, err := kvtest.ReadEventsAsync(st, index, 10); !errors.Is(err, messages.ErrCompacted) {
		return fmt.Errorf("ReadEvents(%d) = %v, want ErrCompacted", index, err)
	}
	if _, err := s.Range(messages.Range{Start: "a", End: store.RangeEndAll, Revision: index - 1}); !errors.Is(err, messages.ErrCompacted) {
		return fmt.Errorf("a range at %d: %v, want ErrCompacted", index-1, err)
	}
	if res, err := s.Range(messages.Range{Start: "a", End: store.RangeEndAll, Revision: index}); err != nil || len(res.KVs) != 2 {
		return fmt.Errorf("a range at %d: %+v, %v; want j and k", index, res, err)
	}
	return nil
}

// OpenState brings the db level with the log, or refuses.
func TestOpenStateReconciles(t *testing.T) {
	snapAt := func(index uint64, data []byte) *raftpb.Snapshot {
		return &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: new(index), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}
	}
	legacy := legacySnapshot(t, map[uint64]string{1: "http://a:1"}, nil, map[string]string{"k": "v"})

	t.Run("a data dir of the previous layout is migrated", func(t *testing.T) {
		s, err := OpenState(testStateConfig(t.TempDir(), apply.FormatNative, snapAt(40, legacy)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if idx, term := s.Applied(); idx != 40 || term != 2 {
			t.Fatalf("applied %d term %d, want 40 and 2", idx, term)
		}
		if err := s.ConfState().Equivalent(&raftpb.ConfState{Voters: []uint64{1}}); err != nil {
			t.Fatalf("conf state: %v", err)
		}
		if r, ok := mustGet(t, s.st, "k"); !ok || string(r.Value) != "v" || r.ModRevision != 40 {
			t.Fatalf("k = %+v %v", r, ok)
		}
		if s.Members()[1] != "http://a:1" {
			t.Fatalf("members %v", s.Members())
		}
	})
	t.Run("a raftexample snapshot is migrated", func(t *testing.T) {
		s, err := OpenState(testStateConfig(t.TempDir(), apply.FormatRaftexample, snapAt(40, []byte(`{"/k":"v"}`))))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if r, ok := mustGet(t, s.st, "/k"); !ok || string(r.Value) != "v" {
			t.Fatalf("/k = %+v %v", r, ok)
		}
	})
	t.Run("no db and a snapshot without its db: lost", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := OpenState(testStateConfig(dir, apply.FormatNative, snapAt(40, nil))); !errors.Is(err, ErrStateLost) {
			t.Fatalf("OpenState: %v, want ErrStateLost", err)
		}
		if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a refused open left an empty db behind")
		}
	})
	t.Run("a db behind the snapshot takes the db received with it", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testStateConfig(dir, apply.FormatNative, nil)
		s, err := OpenState(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		// The db received with the snapshot at 40, saved before a crash.
		src := openTestState(t, apply.FormatNative)
		if err := src.st.Put("from-leader", []byte("x"), 45, 0); err != nil {
			t.Fatal(err)
		}
		src.st.SetApplied(45, 2, &raftpb.ConfState{Voters: []uint64{1, 2}})
		if err := src.st.Commit(); err != nil {
			t.Fatal(err)
		}
		rc, err := src.SnapshotReader()
		if err != nil {
			t.Fatal(err)
		}
		err = store.ReceiveSnapshotDB(cfg.SnapshotDB(40), 40, rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		// A transfer a crash cut short, and a db received with an older
		// snapshot: both removed once the state is level.
		partial := cfg.SnapshotDB(50) + ".1234.tmp"
		if err := os.WriteFile(partial, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		older := cfg.SnapshotDB(30)
		if err := os.WriteFile(older, []byte("older"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Snapshot = snapAt(40, nil)
		s, err = OpenState(cfg)
		if err != nil {
			t.Fatalf("OpenState: %v", err)
		}
		defer s.Close()
		if idx, _ := s.Applied(); idx != 45 {
			t.Fatalf("applied %d, want 45", idx)
		}
		if err := s.ConfState().Equivalent(&raftpb.ConfState{Voters: []uint64{1, 2}}); err != nil {
			t.Fatalf("conf state: %v", err)
		}
		if _, ok := mustGet(t, s.st, "from-leader"); !ok {
			t.Fatal("the received db was not installed")
		}
		for _, p := range []string{cfg.SnapshotDB(40), partial, older} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there once the state is level (%v)", filepath.Base(p), err)
			}
		}
	})
	t.Run("a db behind the snapshot, nothing received: lost", func(t *testing.T) {
		dir := t.TempDir()
		s, err := OpenState(testStateConfig(dir, apply.FormatNative, nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if _, err := OpenState(testStateConfig(dir, apply.FormatNative, snapAt(40, nil))); !errors.Is(err, ErrStateLost) {
			t.Fatalf("OpenState: %v, want ErrStateLost", err)
		}
	})
	t.Run("an unreadable db, no snapshot: rebuilt from the log", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DBFile), bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenState(testStateConfig(dir, apply.FormatNative, nil))
		if err != nil {
			t.Fatalf("OpenState: %v", err)
		}
		defer s.Close()
		if idx, _ := s.Applied(); idx != 0 {
			t.Fatalf("applied %d, want 0", idx)
		}
		if aside, _ := filepath.Glob(filepath.Join(dir, DBFile+".unreadable-*")); len(aside) != 1 {
			t.Fatalf("the unreadable db was not kept aside: %v", aside)
		}
	})
	t.Run("an unreadable db, the log compacted: lost", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DBFile), bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenState(testStateConfig(dir, apply.FormatNative, snapAt(40, nil))); !errors.Is(err, ErrStateLost) {
			t.Fatalf("OpenState: %v, want ErrStateLost", err)
		}
	})
}

// A state restored from inline snapshot data (a data dir of the previous
// layout, raftexample's JSON) knows nothing before the snapshot: its
// history is empty and starts there.
func TestInlineSnapshotResetsHistory(t *testing.T) {
	legacy := legacySnapshot(t, map[uint64]string{1: "http://a:1"}, nil, map[string]string{"k": "v", "j": "w"})
	for _, c := range []struct {
		name   string
		format apply.Format
		data   []byte
	}{
		{"previous layout", apply.FormatNative, legacy},
		{"raftexample", apply.FormatRaftexample, []byte(`{"k":"v","j":"w"}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			snap := &raftpb.Snapshot{Data: c.data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(40)), Term: new(uint64(2)), ConfState: confState([]uint64{1}, nil)}}
			st, err := OpenState(testStateConfig(t.TempDir(), c.format, snap))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			checkRestoredHistory(t, st, 40)
		})
	}
}
