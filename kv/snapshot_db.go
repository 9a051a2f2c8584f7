package kv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrSnapshotDB is returned for a db received with a snapshot that cannot
// be used: cut short, not a db of this layout, or older than the snapshot
// it came with. What was written is removed; the member's own db is
// untouched.
var ErrSnapshotDB = errors.New("received snapshot db is unusable")

// SnapshotDBSource opens the db a follower needs as a stream (see
// backend.snapshotReader); the transport calls it from its own goroutine.
// The stream's applied index is at or past any snapshot raft sends: a
// snapshot is taken only after the db committed its index.
type SnapshotDBSource func() (io.ReadCloser, error)

// ReceiveSnapshotDB saves the db streamed with a snapshot at index to path:
// into a temporary file beside it, synced, checked (a bbolt file of this
// layout, applied index at or past index, every page reachable), then
// renamed into place. It never holds more than a copy buffer of it in
// memory. On any error the temporary file is removed.
func ReceiveSnapshotDB(path string, index uint64, r io.Reader) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create a file for the snapshot db: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, r)
	if err != nil {
		return fmt.Errorf("%w: receive (%d bytes in): %w", ErrSnapshotDB, n, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := checkSnapshotDB(tmp, index); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(dir)
}

// checkSnapshotDB opens a received db read-only and checks it whole.
func checkSnapshotDB(path string, index uint64) error {
	db, err := openDB(path, true)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotDB, err)
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotDB, err)
	}
	defer func() { _ = tx.Rollback() }()
	// A file cut short can keep intact meta pages that name pages past
	// its end; reading those through the mmap is a SIGBUS, not an error.
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotDB, err)
	}
	if fi.Size() < tx.Size() {
		return fmt.Errorf("%w: %d bytes, its pages need %d", ErrSnapshotDB, fi.Size(), tx.Size())
	}
	m, err := readMeta(tx, false)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotDB, err)
	}
	if m.applied < index {
		return fmt.Errorf("%w: it holds index %d, the snapshot is at %d", ErrSnapshotDB, m.applied, index)
	}
	// Check's goroutine sends every error it finds: drain them all.
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotDB, first)
	}
	return nil
}
