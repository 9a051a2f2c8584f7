package backup

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/raftkv/node/kv/store"
)

// SumSize is the length of the checksum that ends a backup.
const SumSize = sha256.Size

// ErrCorrupt is returned for a backup whose checksum does not match what
// it holds: cut short, changed, or not a backup at all.
var ErrCorrupt = errors.New("backup corrupt")

// Info describes a backup: what its db holds, its size (with the
// checksum) and the checksum.
type Info struct {
	store.Info
	Size int64
	Sum  [SumSize]byte
}

// WriteTo copies a backup stream (the db, then its SHA-256) from r into a
// new file at path: a temporary file beside it, synced, checked and
// renamed, so that path is either absent or a whole, checked backup. It
// never holds more than a copy buffer in memory.
func WriteTo(r io.Reader, path string) (Info, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".part-*")
	if err != nil {
		return Info{}, fmt.Errorf("create a file beside %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, r); err != nil {
		return Info{}, fmt.Errorf("receive the backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	info, err := Status(tmp.Name())
	if err != nil {
		return Info{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return Info{}, fmt.Errorf("rename the backup into place: %w", err)
	}
	done = true
	syncDir(dir)
	return info, nil
}

// Status checks the backup at path, its checksum first, and reads what its
// db holds.
func Status(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	info := Info{Size: st.Size()}
	if info.Sum, err = verify(f, info.Size, path, io.Discard); err != nil {
		return Info{}, err
	}
	// bbolt reads the db by its pages: the checksum after them is never
	// read as one.
	if info.Info, err = store.ReadInfo(path); err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return info, nil
}

// verify reads a backup of size bytes from r, the db into w, and checks
// the checksum that follows it; path names the backup in errors.
func verify(r io.Reader, size int64, path string, w io.Writer) (sum [SumSize]byte, err error) {
	if size <= SumSize {
		return sum, fmt.Errorf("%w: %s holds %d bytes, too few for a db and its checksum", ErrCorrupt, path, size)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(w, h), r, size-SumSize); err != nil {
		return sum, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return sum, fmt.Errorf("read %s: %w", path, err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return sum, fmt.Errorf("%w: %s does not match its checksum (cut short, or changed)", ErrCorrupt, path)
	}
	return sum, nil
}
