package store

import (
	"io"

	"github.com/raftkv/node/kv/backend"
)

// Backup streams the db as of its last commit, as SnapshotReader does,
// with the stream's length: a backup's reader tells its client how much is
// left. Any goroutine may call it; writers go on meanwhile.
func (s *Store) Backup() (rc io.ReadCloser, size int64, index uint64, err error) {
	tx, err := s.be.ReadTx()
	if err != nil {
		return nil, 0, 0, err
	}
	m, err := readMeta(tx, false)
	if err != nil {
		_ = tx.Rollback()
		return nil, 0, 0, err
	}
	return backend.Stream(tx), tx.Size(), m.applied, nil
}

// DBSize is the db's size as of its last commit and the part of it in use
// (backend.Backend.Size).
func (s *Store) DBSize() (size, inUse int64, err error) { return s.be.Size() }
