package backend_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/kv/backend/backendtest"
)

var bucket = []byte("b")

// put writes key=value into the batch transaction, making the bucket if
// need be, and counts it for the commit policy.
func put(t testing.TB, be *backend.Backend, key, value string) {
	t.Helper()
	bk, err := be.Tx().CreateBucketIfNotExists(bucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := bk.Put([]byte(key), []byte(value)); err != nil {
		t.Fatal(err)
	}
	be.Wrote()
}

// contents reads the bucket of tx whole; nil if tx has no bucket.
func contents(t testing.TB, tx *bolt.Tx) map[string]string {
	t.Helper()
	bk := tx.Bucket(bucket)
	if bk == nil {
		return nil
	}
	out := make(map[string]string)
	if err := bk.ForEach(func(k, v []byte) error { out[string(k)] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// committed reads the bucket as of the last commit, in a read transaction
// on a goroutine of its own (any goroutine may read).
func committed(t testing.TB, be *backend.Backend) map[string]string {
	t.Helper()
	type result struct {
		kvs map[string]string
		err error
	}
	done := make(chan result)
	go func() {
		tx, err := be.ReadTx()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer func() { _ = tx.Rollback() }()
		var r result
		if bk := tx.Bucket(bucket); bk != nil {
			r.kvs = make(map[string]string)
			r.err = bk.ForEach(func(k, v []byte) error { r.kvs[string(k)] = string(v); return nil })
		}
		done <- r
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("read the last commit: %v", r.err)
	}
	return r.kvs
}

func sameMap(a, b map[string]string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// openAt opens the backend at path, closed when the test ends.
func openAt(t testing.TB, path string) (*backend.Backend, bool) {
	t.Helper()
	be, fresh, err := backend.Open(path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be, fresh
}

// Open says whether it made the file; a file that is not a db is ErrOpen.
func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	be, fresh := openAt(t, path)
	if !fresh || be.Path() != path || be.Tx() == nil || be.Pending() != 0 {
		t.Fatalf("a new db: fresh %v, path %q, tx %v, pending %d", fresh, be.Path(), be.Tx(), be.Pending())
	}
	put(t, be, "k", "v")
	if err := be.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be, fresh = openAt(t, path)
	if fresh || !sameMap(contents(t, be.Tx()), map[string]string{"k": "v"}) {
		t.Fatalf("reopened: fresh %v, holds %v", fresh, contents(t, be.Tx()))
	}

	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	if be, _, err := backend.Open(junk); !errors.Is(err, backend.ErrOpen) {
		if be != nil {
			_ = be.Close()
		}
		t.Fatalf("Open of a file that is not a db: %v, want ErrOpen", err)
	}
}

// The batch transaction is due to commit once it holds BatchLimit entries;
// a commit makes it durable and starts the count again.
func TestCommitPolicy(t *testing.T) {
	cases := []struct {
		writes int
		due    bool
	}{
		{0, false},
		{1, false},
		{backend.BatchLimit - 1, false},
		{backend.BatchLimit, true},
		{backend.BatchLimit + 1, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.writes, " writes"), func(t *testing.T) {
			be := backendtest.NewTmpBackend(t)
			var want map[string]string
			if c.writes > 0 {
				put(t, be, "first", "x")
				want = map[string]string{"first": "x"}
				for range c.writes - 1 {
					be.Wrote()
				}
			}
			if be.Pending() != c.writes || be.CommitDue() != c.due {
				t.Fatalf("after %d writes: pending %d, due %v; want %d, %v", c.writes, be.Pending(), be.CommitDue(), c.writes, c.due)
			}
			if err := be.Commit(); err != nil {
				t.Fatal(err)
			}
			if be.Pending() != 0 || be.CommitDue() {
				t.Fatalf("after a commit: pending %d, due %v; want 0, false", be.Pending(), be.CommitDue())
			}
			if got := committed(t, be); !sameMap(got, want) {
				t.Fatalf("committed %v, want %v", got, want)
			}
			// The next transaction counts from zero.
			be.Wrote()
			if be.Pending() != 1 || be.CommitDue() {
				t.Fatalf("after a commit and a write: pending %d, due %v", be.Pending(), be.CommitDue())
			}
		})
	}
}

// A read transaction sees the last commit whole: nothing the batch
// transaction holds, and, once begun, nothing committed after.
func TestReadTxSeesLastCommit(t *testing.T) {
	be := backendtest.NewTmpBackend(t)
	if got := committed(t, be); got != nil {
		t.Fatalf("a new db, nothing committed: read %v", got)
	}
	put(t, be, "a", "1")
	if got := committed(t, be); got != nil {
		t.Fatalf("before the first commit: read %v", got)
	}
	if err := be.Commit(); err != nil {
		t.Fatal(err)
	}
	put(t, be, "a", "2")
	put(t, be, "b", "1")
	if got := committed(t, be); !sameMap(got, map[string]string{"a": "1"}) {
		t.Fatalf("with writes pending: read %v, want the last commit's", got)
	}
	if got := contents(t, be.Tx()); !sameMap(got, map[string]string{"a": "2", "b": "1"}) {
		t.Fatalf("the batch transaction holds %v", got)
	}
	old, err := be.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Commit(); err != nil {
		_ = old.Rollback()
		t.Fatal(err)
	}
	stale := contents(t, old)
	_ = old.Rollback()
	if !sameMap(stale, map[string]string{"a": "1"}) {
		t.Fatalf("a read transaction begun before a commit: read %v, want what it began with", stale)
	}
	if got := committed(t, be); !sameMap(got, map[string]string{"a": "2", "b": "1"}) {
		t.Fatalf("after the commit: read %v", got)
	}
}

// Abort drops what the batch transaction holds, and so does Close: only
// what was committed is there at the next open. A backend aborted commits
// no more.
func TestAbortDropsUncommitted(t *testing.T) {
	for _, c := range []struct {
		name  string
		abort bool
	}{
		{"abort", true},
		{"close without a commit", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			be, _ := openAt(t, path)
			put(t, be, "kept", "1")
			if err := be.Commit(); err != nil {
				t.Fatal(err)
			}
			put(t, be, "kept", "2")
			put(t, be, "dropped", "1")
			if c.abort {
				be.Abort()
				if be.Tx() != nil || be.Pending() != 0 {
					t.Fatalf("after Abort: tx %v, pending %d", be.Tx(), be.Pending())
				}
				if err := be.Commit(); err == nil {
					t.Fatal("Commit after Abort succeeded")
				}
				be.Abort() // twice is harmless
			}
			if err := be.Close(); err != nil {
				t.Fatal(err)
			}
			be, _ = openAt(t, path)
			if got := contents(t, be.Tx()); !sameMap(got, map[string]string{"kept": "1"}) {
				t.Fatalf("reopened: %v, want only the commit's", got)
			}
		})
	}
}

// streamAll streams be's last commit and returns its bytes.
func streamAll(t testing.TB, be *backend.Backend) []byte {
	t.Helper()
	tx, err := be.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	rc := backend.Stream(tx)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	return b
}

// A db streamed from a read transaction and received elsewhere holds the
// last commit, nothing written since; Receive checks it with the caller's
// inspect, on the received file.
func TestStreamRoundTrip(t *testing.T) {
	src := backendtest.NewTmpBackend(t)
	want := make(map[string]string)
	for i := range 2000 {
		k, v := fmt.Sprintf("key-%04d", i), strings.Repeat(fmt.Sprint(i%10), 100)
		put(t, src, k, v)
		want[k] = v
	}
	if err := src.Commit(); err != nil {
		t.Fatal(err)
	}
	put(t, src, "later", "x") // not committed: not in the stream

	// Closing a stream ends its read transaction, whether it was read to
	// its end or not: bbolt's Close would wait for it forever. A
	// transaction left open is rolled back here before the test fails, so
	// that the backend's cleanup can close it.
	var streamed []*bolt.Tx
	endsItsTx := func(what string) {
		t.Helper()
		if n := src.Tx().DB().Stats().OpenTxN; n != 0 {
			for _, tx := range streamed {
				_ = tx.Rollback()
			}
			t.Fatalf("%s: %d read transactions still open", what, n)
		}
	}
	tx, err := src.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	streamed = append(streamed, tx)
	rc := backend.Stream(tx)
	dst := filepath.Join(t.TempDir(), "sub", "received.db")
	var inspected map[string]string
	err = backend.Receive(dst, rc, func(tx *bolt.Tx) error {
		inspected = contents(t, tx)
		return nil
	})
	if cerr := rc.Close(); err != nil || cerr != nil {
		t.Fatalf("Receive: %v; close the stream: %v", err, cerr)
	}
	endsItsTx("a stream read to its end, closed")
	if !sameMap(inspected, want) {
		t.Fatalf("inspect saw %d keys, want %d", len(inspected), len(want))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), "*.tmp")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := backend.Check(dst, nil); err != nil {
		t.Fatalf("Check of the received db: %v", err)
	}
	got, _ := openAt(t, dst)
	if !sameMap(contents(t, got.Tx()), want) {
		t.Fatal("the received db does not hold the last commit")
	}

	tx, err = src.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	streamed = append(streamed, tx)
	rc = backend.Stream(tx)
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	endsItsTx("a stream closed before its end")
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}

// Replace swaps in a received db whole: what the batch transaction held is
// dropped, reads see the new file, and the file moved is gone from where it
// was. A file that is not there changes nothing.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	be, _ := openAt(t, filepath.Join(dir, "db"))
	put(t, be, "mine", "1")
	if err := be.Commit(); err != nil {
		t.Fatal(err)
	}
	put(t, be, "uncommitted", "1")

	if _, err := be.Replace(filepath.Join(dir, "absent.db")); err == nil {
		t.Fatal("Replace with a file that is not there succeeded")
	}
	if got := contents(t, be.Tx()); !sameMap(got, map[string]string{"mine": "1", "uncommitted": "1"}) || be.Pending() != 1 {
		t.Fatalf("a failed Replace changed the batch transaction: %v, pending %d", got, be.Pending())
	}

	// The leader's db, received.
	leader := backendtest.NewTmpBackend(t)
	put(t, leader, "theirs", "2")
	if err := leader.Commit(); err != nil {
		t.Fatal(err)
	}
	received := filepath.Join(dir, "received.db")
	tx, err := leader.ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	rc := backend.Stream(tx)
	err = backend.Receive(received, rc, nil)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}

	retired, err := be.Replace(received)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	// The old file comes back open and unlinked: its blocks are freed at
	// its close, on the caller's time, not inside Replace.
	st, err := retired.(*os.File).Stat()
	if err != nil {
		t.Fatal(err)
	}
	if links := st.Sys().(*syscall.Stat_t).Nlink; links != 0 {
		t.Fatalf("the retired file has %d links, want 0 (the rename replaced it)", links)
	}
	if err := retired.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"theirs": "2"}
	if got := contents(t, be.Tx()); !sameMap(got, want) || be.Pending() != 0 {
		t.Fatalf("after Replace the batch transaction holds %v, pending %d; want %v, 0", got, be.Pending(), want)
	}
	if got := committed(t, be); !sameMap(got, want) {
		t.Fatalf("after Replace a read sees %v, want %v", got, want)
	}
	if be.Path() != filepath.Join(dir, "db") {
		t.Fatalf("path %q after Replace", be.Path())
	}
	if _, err := os.Stat(received); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the received file is still there after Replace: %v", err)
	}
	// The replaced db is the backend's file from now on.
	put(t, be, "after", "3")
	if err := be.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	be, _ = openAt(t, filepath.Join(dir, "db"))
	if got := contents(t, be.Tx()); !sameMap(got, map[string]string{"theirs": "2", "after": "3"}) {
		t.Fatalf("reopened after Replace: %v", got)
	}
}

// Receive refuses a stream cut short, one that fails, one that is not a db
// and one its inspect refuses; it leaves nothing behind, and whatever was
// at its path is untouched.
func TestReceiveRefuses(t *testing.T) {
	src := backendtest.NewTmpBackend(t)
	for i := range 500 {
		put(t, src, fmt.Sprintf("key-%04d", i), strings.Repeat("v", 200))
	}
	if err := src.Commit(); err != nil {
		t.Fatal(err)
	}
	whole := streamAll(t, src)
	errInspect := errors.New("not the db wanted")
	cases := []struct {
		name    string
		r       io.Reader
		inspect func(*bolt.Tx) error
		want    error // nil: any error
	}{
		{name: "cut in half", r: bytes.NewReader(whole[:len(whole)/2])},
		{name: "cut after the meta pages", r: bytes.NewReader(whole[:3*os.Getpagesize()])},
		{name: "one byte short", r: bytes.NewReader(whole[:len(whole)-1])},
		{name: "meta pages only", r: bytes.NewReader(whole[:2*os.Getpagesize()])},
		{name: "empty", r: bytes.NewReader(nil)},
		{name: "the stream fails", r: io.MultiReader(bytes.NewReader(whole[:len(whole)/2]), errReader{io.ErrUnexpectedEOF}), want: io.ErrUnexpectedEOF},
		{name: "not a db", r: bytes.NewReader(bytes.Repeat([]byte("x"), 8192)), want: backend.ErrOpen},
		{name: "inspect refuses", r: bytes.NewReader(whole), inspect: func(*bolt.Tx) error { return errInspect }, want: errInspect},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A db cut short past its meta pages names pages the file
			// does not hold; reading one through the mmap faults
			// (SIGBUS), which no recover catches: run the case in a
			// process of its own, so that a fault fails it alone.
			if inChild := testutil.Isolate(t); !inChild {
				return
			}
			dir := t.TempDir()
			dst := filepath.Join(dir, "x.db")
			before := []byte("what was there before")
			if err := os.WriteFile(dst, before, 0o600); err != nil {
				t.Fatal(err)
			}
			err := backend.Receive(dst, c.r, c.inspect)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Receive: %v, want an error (%v)", err, c.want)
			}
			left, _ := os.ReadDir(dir)
			if len(left) != 1 || left[0].Name() != "x.db" {
				t.Fatalf("left behind: %v", left)
			}
			if got, _ := os.ReadFile(dst); !bytes.Equal(got, before) {
				t.Fatalf("the file at the path was changed: %q", got)
			}
		})
	}
	// The whole stream is taken: the refusals are the cases'.
	dst := filepath.Join(t.TempDir(), "x.db")
	if err := backend.Receive(dst, bytes.NewReader(whole), nil); err != nil {
		t.Fatalf("Receive of the whole stream: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
