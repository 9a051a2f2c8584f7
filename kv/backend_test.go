package kv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// testStateConfig is the state of a member in dir, with the snapshot dbs
// named as persistence names them.
func testStateConfig(dir string, f Format, snap *raftpb.Snapshot) StateConfig {
	return StateConfig{
		Path: filepath.Join(dir, DBFile), Format: f, Snapshot: snap,
		SnapshotDB: func(i uint64) string { return filepath.Join(dir, "snap", fmt.Sprintf("%016x.snap.db", i)) },
	}
}

// openTestState opens a fresh state in a temporary directory, closed when
// the test ends.
func openTestState(t testing.TB, f Format) *State {
	t.Helper()
	s, err := OpenState(testStateConfig(t.TempDir(), f, nil))
	if err != nil {
		t.Fatalf("OpenState: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustGet(t *testing.T, b *backend, key string) (record, bool) {
	t.Helper()
	r, ok, err := b.get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return r, ok
}

// A key's record carries the index that created it, the index of its last
// write and its count of writes; a delete ends its life, and a put after it
// starts a new one.
func TestBackendRevisions(t *testing.T) {
	b := openTestState(t, FormatNative).be
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
	for _, s := range steps {
		var err error
		if s.op == "del" {
			_, _, err = b.del("k", s.index)
		} else {
			_, err = b.put("k", []byte(s.op[4:]), s.index, 0)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.op, err)
		}
		got, ok := mustGet(t, b, "k")
		if s.want == nil {
			if ok {
				t.Fatalf("after %s: %+v, want absent", s.op, got)
			}
			continue
		}
		if !ok || got.createRev != s.want.createRev || got.modRev != s.want.modRev || got.version != s.want.version || !bytes.Equal(got.value, s.want.value) {
			t.Fatalf("after %s: %+v, want %+v", s.op, got, *s.want)
		}
	}
	if b.meta.keys != 1 || b.meta.used != cost("k", []byte("c")) {
		t.Fatalf("keys %d used %d, want 1 and %d", b.meta.keys, b.meta.used, cost("k", []byte("c")))
	}
}

// What a commit made durable is there after a reopen, meta data included;
// what was not committed is not.
func TestBackendCommitAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenState(testStateConfig(dir, FormatNative, nil))
	if err != nil {
		t.Fatal(err)
	}
	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}}
	if _, err := s.be.put("a", []byte("1"), 3, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.st.addMember(2, "http://b:2"); err != nil {
		t.Fatal(err)
	}
	if err := s.st.setClients(2, []string{"http://b:3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.st.removeMember(4); err != nil {
		t.Fatal(err)
	}
	s.be.setApplied(3, 2, cs)
	if err := s.be.commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.be.put("uncommitted", []byte("x"), 4, 0); err != nil {
		t.Fatal(err)
	}
	// Close commits: simulate a crash instead by rolling back.
	_ = s.be.tx.Rollback()
	s.be.tx = nil
	if err := s.be.db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenState(testStateConfig(dir, FormatNative, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if idx, term := s.Applied(); idx != 3 || term != 2 {
		t.Fatalf("applied %d term %d, want 3 and 2", idx, term)
	}
	if err := s.ConfState().Equivalent(cs); err != nil {
		t.Fatalf("conf state: %v", err)
	}
	if _, ok := mustGet(t, s.be, "uncommitted"); ok {
		t.Fatal("an uncommitted write survived")
	}
	if r, ok := mustGet(t, s.be, "a"); !ok || string(r.value) != "1" {
		t.Fatalf("a = %+v %v", r, ok)
	}
	if m := s.Members(); len(m) != 1 || m[2] != "http://b:2" || !slices.Equal(s.st.clients[2], []string{"http://b:3"}) {
		t.Fatalf("members %v, clients %v", m, s.st.clients)
	}
	if !slices.Equal(s.Removed(), []uint64{4}) {
		t.Fatalf("removed %v", s.Removed())
	}
}

// The quota refuses a put that takes the used bytes past it, whether the
// key is new or grows; a put that shrinks the data and a delete always
// pass, and free room for the next put.
func TestBackendQuota(t *testing.T) {
	b := openTestState(t, FormatNative).be
	quota := cost("a", make([]byte, 100)) + cost("b", make([]byte, 50))
	if _, err := b.put("a", make([]byte, 100), 1, quota); err != nil {
		t.Fatal(err)
	}
	if _, err := b.put("b", make([]byte, 50), 2, quota); err != nil {
		t.Fatal(err)
	}
	if _, err := b.put("c", nil, 3, quota); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a put past the quota: %v, want ErrNoSpace", err)
	}
	if _, err := b.put("a", make([]byte, 101), 3, quota); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("growing a value past the quota: %v, want ErrNoSpace", err)
	}
	if _, ok := mustGet(t, b, "c"); ok {
		t.Fatal("a refused put was written")
	}
	if _, err := b.put("a", make([]byte, 10), 4, quota); err != nil {
		t.Fatalf("shrinking a value: %v", err)
	}
	if _, err := b.put("c", nil, 5, quota); err != nil {
		t.Fatalf("a put after room was freed: %v", err)
	}
	if _, _, err := b.del("b", 6); err != nil {
		t.Fatal(err)
	}
	if b.meta.used != cost("a", make([]byte, 10))+cost("c", nil) {
		t.Fatalf("used %d", b.meta.used)
	}
}

// The db streams from a read transaction of its last commit, and a
// follower's copy, checked and renamed into place, holds the same state.
func TestSnapshotDBRoundTrip(t *testing.T) {
	src := openTestState(t, FormatNative)
	for i := range 1000 {
		if _, err := src.be.put(fmt.Sprintf("key-%04d", i), bytes.Repeat([]byte{byte(i)}, 100), uint64(i+1), 0); err != nil {
			t.Fatal(err)
		}
	}
	src.be.setApplied(1000, 3, &raftpb.ConfState{Voters: []uint64{1}})
	if err := src.be.commit(); err != nil {
		t.Fatal(err)
	}
	// Written after the commit: not in the stream.
	if _, err := src.be.put("later", []byte("x"), 1001, 0); err != nil {
		t.Fatal(err)
	}
	rc, err := src.SnapshotReader()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "0000000000000390.snap.db")
	if err := ReceiveSnapshotDB(dst, 900, rc); err != nil {
		t.Fatalf("ReceiveSnapshotDB: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}

	follower := openTestState(t, FormatNative)
	if err := follower.install(dst); err != nil {
		t.Fatal(err)
	}
	if idx, _ := follower.Applied(); idx != 1000 {
		t.Fatalf("installed db at %d, want 1000", idx)
	}
	if r, ok := mustGet(t, follower.be, "key-0999"); !ok || !bytes.Equal(r.value, bytes.Repeat([]byte{231}, 100)) {
		t.Fatalf("key-0999 = %v %v", r, ok)
	}
	if _, ok := mustGet(t, follower.be, "later"); ok {
		t.Fatal("an uncommitted write reached the follower")
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the received db is still at %s after its install", dst)
	}
}

// A stream cut midway, one that is not a db, or a db older than its
// snapshot is refused, and nothing of it stays on disk.
func TestReceiveSnapshotDBRefusals(t *testing.T) {
	src := openTestState(t, FormatNative)
	src.be.setApplied(50, 1, &raftpb.ConfState{Voters: []uint64{1}})
	if err := src.be.commit(); err != nil {
		t.Fatal(err)
	}
	whole := func() []byte {
		rc, err := src.SnapshotReader()
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
			if inChild := isolate(t); !inChild {
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
}

// isolateEnv names the test a child process of isolate runs.
const isolateEnv = "KV_TEST_ISOLATED"

// isolate runs the calling test again in a child process of the test
// binary, and fails it if the child fails or dies, for a test that may kill
// its process (a fault in an mmap). It returns true in the child, which goes
// on with the test, and false in the parent, which has nothing more to do.
func isolate(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolateEnv) == t.Name() {
		return true
	}
	var pattern []string
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(os.Args[0], "-test.run="+strings.Join(pattern, "/"), "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), isolateEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(string(out), "\ngoroutine ")
		t.Fatalf("in a process of its own: %v\n%s", err, first)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("in a process of its own, the test did not pass:\n%s", out)
	}
	return false
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// OpenState brings the db level with the log, or refuses.
func TestOpenStateReconciles(t *testing.T) {
	snapAt := func(index uint64, data []byte) *raftpb.Snapshot {
		return &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: new(index), Term: new(uint64(2)), ConfState: &raftpb.ConfState{Voters: []uint64{1}}}}
	}
	legacy := legacySnapshot(t, map[uint64]string{1: "http://a:1"}, nil, map[string]string{"k": "v"})

	t.Run("a data dir of the previous layout is migrated", func(t *testing.T) {
		s, err := OpenState(testStateConfig(t.TempDir(), FormatNative, snapAt(40, legacy)))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if idx, _ := s.Applied(); idx != 40 {
			t.Fatalf("applied %d, want 40", idx)
		}
		if r, ok := mustGet(t, s.be, "k"); !ok || string(r.value) != "v" || r.modRev != 40 {
			t.Fatalf("k = %+v %v", r, ok)
		}
		if s.Members()[1] != "http://a:1" {
			t.Fatalf("members %v", s.Members())
		}
	})
	t.Run("a raftexample snapshot is migrated", func(t *testing.T) {
		s, err := OpenState(testStateConfig(t.TempDir(), FormatRaftexample, snapAt(40, []byte(`{"/k":"v"}`))))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if r, ok := mustGet(t, s.be, "/k"); !ok || string(r.value) != "v" {
			t.Fatalf("/k = %+v %v", r, ok)
		}
	})
	t.Run("no db and a snapshot without its db: lost", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := OpenState(testStateConfig(dir, FormatNative, snapAt(40, nil))); !errors.Is(err, ErrStateLost) {
			t.Fatalf("OpenState: %v, want ErrStateLost", err)
		}
		if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a refused open left an empty db behind")
		}
	})
	t.Run("a db behind the snapshot takes the db received with it", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testStateConfig(dir, FormatNative, nil)
		s, err := OpenState(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		// The db received with the snapshot at 40, saved before a crash.
		src := openTestState(t, FormatNative)
		if _, err := src.be.put("from-leader", []byte("x"), 45, 0); err != nil {
			t.Fatal(err)
		}
		src.be.setApplied(45, 2, &raftpb.ConfState{Voters: []uint64{1, 2}})
		if err := src.be.commit(); err != nil {
			t.Fatal(err)
		}
		rc, _ := src.SnapshotReader()
		if err := ReceiveSnapshotDB(cfg.SnapshotDB(40), 40, rc); err != nil {
			t.Fatal(err)
		}
		_ = rc.Close()
		cfg.Snapshot = snapAt(40, nil)
		s, err = OpenState(cfg)
		if err != nil {
			t.Fatalf("OpenState: %v", err)
		}
		defer s.Close()
		if idx, _ := s.Applied(); idx != 45 {
			t.Fatalf("applied %d, want 45", idx)
		}
		if _, ok := mustGet(t, s.be, "from-leader"); !ok {
			t.Fatal("the received db was not installed")
		}
	})
	t.Run("a db behind the snapshot, nothing received: lost", func(t *testing.T) {
		dir := t.TempDir()
		s, err := OpenState(testStateConfig(dir, FormatNative, nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if _, err := OpenState(testStateConfig(dir, FormatNative, snapAt(40, nil))); !errors.Is(err, ErrStateLost) {
			t.Fatalf("OpenState: %v, want ErrStateLost", err)
		}
	})
	t.Run("an unreadable db, no snapshot: rebuilt from the log", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DBFile), bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenState(testStateConfig(dir, FormatNative, nil))
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
		if _, err := OpenState(testStateConfig(dir, FormatNative, snapAt(40, nil))); !errors.Is(err, ErrStateLost) {
			t.Fatalf("OpenState: %v, want ErrStateLost", err)
		}
	})
}
