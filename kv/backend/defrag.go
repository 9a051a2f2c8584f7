package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// copyTxBytes is how much a compact copy writes per transaction of the new
// file: bbolt holds a transaction's dirty pages in memory until it commits,
// so an unbounded one would hold the whole db; 64 MiB is bbolt's own
// Compact's usual bound and etcd's defragment's.
const copyTxBytes = 64 << 20

// ErrCopyCancelled is returned by CopyCompact when its cancel flag was set:
// the member stops, or the copy is no longer wanted.
var ErrCopyCancelled = errors.New("compact copy cancelled")

// CopyCompact writes the db as tx, a read transaction, sees it into a new
// file at path: every bucket's keys in order into pages filled to the brim,
// so the new file holds no free pages and no half-empty ones. It runs on
// any goroutine while the owner of the batch transaction goes on writing
// (bbolt lets one writer and many readers work at once); it checks cancel
// between keys. The caller ends tx. The file is synced; on any error it is
// removed.
func CopyCompact(tx *bolt.Tx, path string, cancel *atomic.Bool) (err error) {
	_ = os.Remove(path) // a copy a crash left behind
	dst, err := openDB(path, false)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dst.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	w, err := dst.Begin(true)
	if err != nil {
		return fmt.Errorf("begin writing %s: %w", path, err)
	}
	defer func() {
		if w != nil {
			_ = w.Rollback()
		}
	}()
	var size int64
	err = tx.ForEach(func(name []byte, src *bolt.Bucket) error {
		b, err := w.CreateBucket(name)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
		b.FillPercent = 1 // keys come in order: fill each page
		c := src.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if cancel != nil && cancel.Load() {
				return ErrCopyCancelled
			}
			if v == nil {
				return fmt.Errorf("bucket %s holds a nested bucket, which no layout has", name)
			}
			if size += int64(len(k) + len(v)); size >= copyTxBytes {
				if err := w.Commit(); err != nil {
					return fmt.Errorf("commit into %s: %w", path, err)
				}
				if w, err = dst.Begin(true); err != nil {
					return fmt.Errorf("begin writing %s: %w", path, err)
				}
				size = 0
				b = w.Bucket(name)
				b.FillPercent = 1
			}
			if err := b.Put(k, v); err != nil {
				return fmt.Errorf("copy into bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = w.Commit()
	w = nil
	if err != nil {
		return fmt.Errorf("commit into %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// Size of the file at path, or 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// FileSize is the size of the db file.
func (b *Backend) FileSize() int64 { return fileSize(b.path) }
