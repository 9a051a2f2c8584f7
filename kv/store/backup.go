package store

import (
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/messages"
)

// Backup streams the db as of its last commit, as SnapshotReader does,
// with the stream's length (a backup's reader tells its client how much is
// left) and what it holds. The stream may be read on any goroutine while
// writers go on; the kv actor commits before it calls it
// (messages.BackupRequest).
func (s *Store) Backup() (rc io.ReadCloser, size int64, info Info, err error) {
	tx, err := s.be.ReadTx()
	if err != nil {
		return nil, 0, Info{}, err
	}
	m, err := readMeta(tx, false)
	if err != nil {
		_ = tx.Rollback()
		return nil, 0, Info{}, err
	}
	info = Info{Index: m.applied, Term: m.term, Revision: max(m.revision, FirstRevision), Keys: m.keys}
	return backend.Stream(tx), tx.Size(), info, nil
}

// DBSize is the db's size as of its last commit and the part of it in use
// (backend.Backend.Size).
func (s *Store) DBSize() (size, inUse int64, err error) { return s.be.Size() }

// Info is what a db holds, as a backup reports it.
type Info = messages.BackupInfo

// ReadInfo opens the db at path read-only and reads its meta data.
func ReadInfo(path string) (Info, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return Info{}, fmt.Errorf("%w: open %s: %w", ErrBadDB, path, err)
	}
	defer func() { _ = db.Close() }()
	var info Info
	err = db.View(func(tx *bolt.Tx) error {
		m, err := readMeta(tx, false)
		if err != nil {
			return err
		}
		info = Info{Index: m.applied, Term: m.term, Revision: max(m.revision, FirstRevision), Keys: m.keys}
		return nil
	})
	return info, err
}
