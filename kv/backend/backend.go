// Package backend owns the bbolt file that holds a member's state machine,
// as etcd's storage/backend does: opening it, the one write transaction
// kept open and committed in batches (the commit policy), read
// transactions of the last commit, streaming the file to a follower,
// receiving one and swapping it in whole. It knows files, buckets and
// bytes; what the bytes mean (records, revisions, the applied index) is
// the store's, in package store above it, which writes its meta data into
// the batch transaction before each commit so that the data and the index
// it is as of reach the disk together.
//
// A Backend is used by one goroutine, its owner's (the kv actor's), except
// ReadTx and Stream, which any goroutine may call: a read transaction sees
// the last commit whole.
package backend

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrOpen is returned for a file bbolt cannot open: not a bbolt file, or
// one another process holds.
var ErrOpen = errors.New("cannot open the db file")

// Sizes and the commit policy, each with the reason for it.
const (
	// initialMmapSize is reserved address space, not memory: bbolt remaps
	// as the file grows, and a remap waits for every read transaction, such
	// as a snapshot being streamed to a follower. 10 GiB is etcd's value:
	// no remap before the file reaches it.
	initialMmapSize = 10 << 30
	// BatchInterval and BatchLimit are when the batch transaction is due
	// to commit: at most BatchInterval after the first entry it holds, or
	// once it holds BatchLimit entries, as etcd's backend commits
	// (100 ms, 10,000). A commit costs an fsync; between commits the
	// entries are durable in the WAL, which a restart replays from the
	// db's applied index on.
	BatchInterval = 100 * time.Millisecond
	BatchLimit    = 10000
)

// Backend is the db file with its batch transaction.
type Backend struct {
	path string

	mu sync.Mutex // guards db against Replace, for ReadTx
	db *bolt.DB

	tx      *bolt.Tx
	pending int // entries written since the last commit
}

// Open opens (or creates) the db at path with its batch transaction
// begun. fresh reports that the file did not exist.
func Open(path string) (b *Backend, fresh bool, err error) {
	_, statErr := os.Stat(path)
	fresh = errors.Is(statErr, os.ErrNotExist)
	db, err := openDB(path, false)
	if err != nil {
		return nil, false, err
	}
	b = &Backend{path: path, db: db}
	if err := b.begin(); err != nil {
		_ = db.Close()
		return nil, false, err
	}
	return b, fresh, nil
}

func openDB(path string, readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second, // the data dir's lock already makes one process its user
		InitialMmapSize: initialMmapSize,
		FreelistType:    bolt.FreelistMapType,
		// The freelist is rebuilt at open from the pages, as etcd does:
		// writing it at every commit costs more than the scan.
		NoFreelistSync: true,
		ReadOnly:       readOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrOpen, path, err)
	}
	return db, nil
}

func (b *Backend) begin() error {
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin a write transaction on %s: %w", b.path, err)
	}
	b.tx = tx
	return nil
}

// Path is the db file's path.
func (b *Backend) Path() string { return b.path }

// Tx is the batch transaction: what it holds is seen by every read through
// it at once, and reaches the disk at the next Commit. It changes at each
// Commit and Replace: never keep it.
func (b *Backend) Tx() *bolt.Tx { return b.tx }

// Wrote counts one entry written into the batch transaction, for the
// commit policy.
func (b *Backend) Wrote() { b.pending++ }

// Pending is how many entries the batch transaction holds.
func (b *Backend) Pending() int { return b.pending }

// CommitDue says the batch transaction holds BatchLimit entries: commit
// now rather than at the interval.
func (b *Backend) CommitDue() bool { return b.pending >= BatchLimit }

// Commit commits the batch transaction (and with it fsyncs the file) and
// begins the next. The caller writes its meta data into Tx first. An error
// leaves the backend without a transaction: its owner stops.
func (b *Backend) Commit() error {
	if b.tx == nil {
		return fmt.Errorf("commit %s: no transaction (after a failure)", b.path)
	}
	err := b.tx.Commit()
	b.tx = nil
	if err != nil {
		return fmt.Errorf("commit %s: %w", b.path, err)
	}
	b.pending = 0
	return b.begin()
}

// ReadTx begins a read transaction of the last commit; the caller rolls it
// back. Any goroutine may call it.
func (b *Backend) ReadTx() (*bolt.Tx, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tx, err := b.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("begin a read transaction on %s: %w", b.path, err)
	}
	return tx, nil
}

// Stream writes the db as of tx, a read transaction, into a pipe from a
// goroutine of its own, so that neither side holds more than the pipe's
// buffer: a follower's snapshot, or a backup. Closing the reader ends the
// stream and tx, and waits for both.
func Stream(tx *bolt.Tx) io.ReadCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := tx.WriteTo(pw)
		_ = tx.Rollback()
		pw.CloseWithError(err)
	}()
	return &txReader{PipeReader: pr, done: done}
}

// txReader is the reading end of a Stream; Close waits for the writing
// goroutine, so that its read transaction is over when Close returns.
type txReader struct {
	*io.PipeReader
	done chan struct{}
}

func (r *txReader) Close() error {
	err := r.PipeReader.CloseWithError(io.ErrClosedPipe)
	<-r.done
	return err
}

// Replace swaps in the db at path (one received with Receive) for the
// current one, atomically by rename: a crash leaves one or the other whole.
// What the batch transaction held is dropped: the state is replaced whole.
//
// retired is the replaced file, still open: the kernel frees a file's
// blocks when its last link and last descriptor go, and for a db of
// hundreds of megabytes that takes as long as deleting it (116 ms for
// 600 MiB on the benchmark box, inside rename(2) when the rename drops the
// last link). Holding it open moves that cost to retired.Close, which the
// caller makes off its hot path. Nil when the old file could not be
// opened (it is then freed by the rename).
func (b *Backend) Replace(path string) (retired io.Closer, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("the db to install: %w", err)
	}
	b.Abort()
	b.mu.Lock()
	defer b.mu.Unlock()
	old, oerr := os.Open(b.path)
	if oerr == nil {
		defer func() {
			if err != nil {
				_ = old.Close()
			} else {
				retired = old
			}
		}()
	}
	if err := b.db.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", b.path, err)
	}
	if err := os.Rename(path, b.path); err != nil {
		return nil, fmt.Errorf("install %s as %s: %w", path, b.path, err)
	}
	if err := syncDir(filepath.Dir(b.path)); err != nil {
		return nil, err
	}
	db, err := openDB(b.path, false)
	if err != nil {
		return nil, err
	}
	b.db = db
	return nil, b.begin()
}

// Rollback drops what the batch transaction holds and begins another: the
// db is as its last commit left it. For an owner rebuilt after a panic,
// whose batch may hold half an entry.
func (b *Backend) Rollback() error {
	b.Abort()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.begin()
}

// Abort rolls the batch transaction back, for an owner that failed: what it
// holds may be half done, and must not reach the disk, not even at Close.
func (b *Backend) Abort() {
	if b.tx != nil {
		_ = b.tx.Rollback()
		b.tx = nil
	}
	b.pending = 0
}

// Close rolls back what was not committed (the owner commits first) and
// closes the file.
func (b *Backend) Close() error {
	b.Abort()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", b.path, err)
	}
	return nil
}

// Receive saves a db streamed from r to path: into a temporary file beside
// it, synced, checked (Check with inspect), then renamed into place. It
// never holds more than a copy buffer of it in memory. On any error the
// temporary file is removed and path is untouched.
func Receive(path string, r io.Reader, inspect func(*bolt.Tx) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create a file for the db: %w", err)
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
		return fmt.Errorf("receive (%d bytes in): %w", n, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := Check(tmp, inspect); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(dir)
}

// Check opens the db at path read-only and checks it whole: every page the
// file's meta names is in the file and reachable, and inspect (the store's
// check of what the db holds) passes on a read transaction.
func Check(path string, inspect func(*bolt.Tx) error) error {
	db, err := openDB(path, true)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin(false)
	if err != nil {
		return fmt.Errorf("begin a read transaction on %s: %w", path, err)
	}
	defer func() { _ = tx.Rollback() }()
	// A file cut short can keep intact meta pages that name pages past
	// its end; reading those through the mmap is a SIGBUS, not an error.
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() < tx.Size() {
		return fmt.Errorf("%d bytes, its pages need %d", fi.Size(), tx.Size())
	}
	if inspect != nil {
		if err := inspect(tx); err != nil {
			return err
		}
	}
	// Check's goroutine sends every error it finds: drain them all.
	var first error
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
	}
	return first
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
