package store

import (
	"errors"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/backend"
)

// ErrSnapshotDB is returned for a db received with a snapshot that cannot
// be used: cut short, not a db of this layout, or older than the snapshot
// it came with. What was written is removed; the member's own db is
// untouched.
var ErrSnapshotDB = errors.New("received snapshot db is unusable")

// SnapshotDBSource opens the db a follower needs as a stream (see
// Store.SnapshotReader); the transport calls it from its own goroutine.
// The stream's applied index is at or past any snapshot raft sends: a
// snapshot is taken only after the db committed its index.
type SnapshotDBSource func() (io.ReadCloser, error)

// ReceiveSnapshotDB saves the db streamed with a snapshot at index to path
// (backend.Receive), checked: a bbolt file of this layout, applied index at
// or past index, every page reachable. It never holds more than a copy
// buffer of it in memory; on any error nothing is left at path.
func ReceiveSnapshotDB(path string, index uint64, r io.Reader) error {
	err := backend.Receive(path, r, func(tx *bolt.Tx) error {
		m, err := readMeta(tx, false)
		if err != nil {
			return err
		}
		if m.applied < index {
			return fmt.Errorf("it holds index %d, the snapshot is at %d", m.applied, index)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSnapshotDB, err)
	}
	return nil
}
