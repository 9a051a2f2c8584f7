package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/messages"
)

// ErrBadSnapshot is returned when inline snapshot data does not decode, or
// names a key twice.
var ErrBadSnapshot = errors.New("malformed snapshot data")

// Store is the replicated state over one backend. Every write takes the
// revision it is made at (the index of its entry), and reaches the disk at
// the next Commit with the applied index it is as of.
type Store struct {
	be   *backend.Backend
	meta meta
	// histRev and histSeq number the history's events: the revision of
	// the last one written and the next sequence number within it.
	histRev uint64
	histSeq uint32
	// histFloor is the key of the last history event deleted, while this
	// store has the db: the history holds nothing below it, so trimming
	// seeks there instead of starting at First, which walks every leaf
	// the batch transaction emptied (bbolt rebalances them at commit):
	// with a delete per event that made trimming a batch cost the square
	// of its size. Nil: start at First.
	histFloor []byte

	members map[uint64]string // id → peer URL
	removed map[uint64]bool
	// clients holds the client URLs each member published once it
	// started, so that any member can tell clients where the others are.
	clients map[uint64][]string
	// events are the changes made since the owner last took them
	// (TakeEvents), for the watch hub.
	events []messages.Event
	// failed is set by Fail: what the batch transaction holds may be half
	// done, and nothing more may reach the disk.
	failed bool
}

// Open opens (or creates) the db at path. fresh reports that it did not
// exist. A file that is not a db of this layout is ErrBadDB.
func Open(path string) (s *Store, fresh bool, err error) {
	be, fresh, err := backend.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrBadDB, err)
	}
	s, err = New(be)
	if err != nil {
		_ = be.Close()
		return nil, false, err
	}
	return s, fresh, nil
}

// New reads the state be holds, making the layout of a new db (and
// committing it at once, so that readers of the last commit find a db, if
// an empty one). The store takes be over: Close closes it.
func New(be *backend.Backend) (*Store, error) {
	s := &Store{be: be}
	made := be.Tx().Bucket(bucketMeta) == nil
	if err := s.load(); err != nil {
		return nil, err
	}
	if made {
		if err := s.Commit(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// load reads the meta data and the member lists of the batch transaction.
func (s *Store) load() error {
	m, err := readMeta(s.be.Tx(), true)
	if err != nil {
		return fmt.Errorf("%s: %w", s.be.Path(), err)
	}
	s.meta = m
	s.histRev, s.histSeq, s.histFloor = 0, 0, nil
	return s.loadMembers()
}

// Backend is the db the store writes; its owner asks it when to commit.
func (s *Store) Backend() *backend.Backend { return s.be }

// SetApplied records the index (and term) of the last entry applied and
// the ConfState as of it (nil: unchanged); they reach the disk with the
// data, at Commit.
func (s *Store) SetApplied(index, term uint64, cs *raftpb.ConfState) {
	s.meta.applied, s.meta.term = index, term
	if cs != nil {
		s.meta.confState = cs
	}
	s.be.Wrote()
}

// Applied is the index (and term) of the last entry the state holds.
func (s *Store) Applied() (index, term uint64) { return s.meta.applied, s.meta.term }

// ConfState is the configuration as of Applied, a copy.
func (s *Store) ConfState() *raftpb.ConfState {
	return proto.Clone(s.meta.confState).(*raftpb.ConfState)
}

// Revision is the store's revision: the index of the last entry that
// changed a key, and 1 for a store no key was ever written to, as etcd's
// store starts at revision 1. No write has revision 1: raft's first entry
// is a conf change (a new cluster's first member) or a snapshot's, never
// a write. A client that reads the empty store's revision and watches from
// it (a lock's or an election's observer) so misses no write; with 0 it
// would watch "from now on".
func (s *Store) Revision() uint64 { return max(s.meta.revision, FirstRevision) }

// FirstRevision is the revision of a store no key was written to.
const FirstRevision = 1

// Compacted is the newest revision the history no longer holds.
func (s *Store) Compacted() uint64 { return s.meta.compacted }

// HistoryEvents is how many events the history holds.
func (s *Store) HistoryEvents() uint64 { return s.meta.histEvents }

// Keys is how many keys the state holds.
func (s *Store) Keys() int { return int(s.meta.keys) }

// Used is the bytes the keys and values take in the quota's accounting
// (Cost of each).
func (s *Store) Used() uint64 { return s.meta.used }

// Commit makes what was written durable: the meta data goes into the batch
// transaction, which the backend commits. An error leaves the store
// unusable; its owner stops.
func (s *Store) Commit() error {
	if s.failed {
		return errors.New("the store failed: nothing more is committed")
	}
	if err := writeMeta(s.be.Tx(), s.meta); err != nil {
		return err
	}
	return s.be.Commit()
}

// Fail marks the store failed, for an owner that stopped on an error:
// what the batch transaction holds may be half an entry, or half a
// restore, so it never commits; Close drops it.
func (s *Store) Fail() { s.failed = true }

// Close commits what was written (unless the store failed) and closes the
// db.
func (s *Store) Close() error {
	var errs []error
	if !s.failed && s.be.Tx() != nil {
		if err := s.Commit(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.be.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Install swaps in a db received with a snapshot (ReceiveSnapshotDB), or a
// compact copy, for the current state, which is dropped whole. retired is
// the old file, still open: closing it frees it (backend.Backend.Replace).
func (s *Store) Install(path string) (retired io.Closer, err error) {
	retired, err = s.be.Replace(path)
	if err != nil {
		return nil, err
	}
	s.events = nil
	if err := s.load(); err != nil {
		if retired != nil {
			_ = retired.Close()
		}
		return nil, err
	}
	return retired, nil
}

// Rollback drops what was applied since the last Commit: the state is the
// db's as of its last commit, as after a restart (the kv actor rebuilt
// after a panic starts from it, and applies the log's entries after it
// again).
func (s *Store) Rollback() error {
	if s.failed {
		return errors.New("the store failed: it cannot be rolled back")
	}
	if err := s.be.Rollback(); err != nil {
		return err
	}
	s.events = nil
	return s.load()
}

// TakeEvents returns the changes made since it was last called.
func (s *Store) TakeEvents() []messages.Event {
	ev := s.events
	s.events = nil
	return ev
}

// Get reads key as written, committed or not. The value is a copy: the
// batch transaction's memory is reused once it commits.
func (s *Store) Get(key string) (messages.KV, bool, error) {
	r, ok, err := s.get(key)
	return r.kv(key), ok, err
}

func (s *Store) get(key string) (record, bool, error) {
	v := s.be.Tx().Bucket(bucketKV).Get([]byte(key))
	if v == nil {
		return record{}, false, nil
	}
	r, err := decodeRecord(bytes.Clone(v))
	return r, err == nil, err
}

// Put writes key at revision rev, attached to lease (0: none), and records
// the change in the history. A lease the state does not hold is
// messages.ErrLeaseNotFound, and nothing is written. As in etcd, a put
// with lease 0 detaches the key from the lease it had, and one with
// another lease moves it there.
func (s *Store) Put(key string, value []byte, rev uint64, lease int64) error {
	if err := s.checkLease(lease); err != nil {
		return err
	}
	bk := s.be.Tx().Bucket(bucketKV)
	ch := change{typ: messages.EventPut, key: key, cur: record{createRev: rev, modRev: rev, version: 1, lease: lease, value: value}}
	used := s.meta.used + Cost(key, value)
	if old := bk.Get([]byte(key)); old != nil {
		prev, err := decodeRecord(old)
		if err != nil {
			return err
		}
		ch.cur.createRev, ch.cur.version = prev.createRev, prev.version+1
		ch.prev, ch.existed = prev, true
		used -= Cost(key, prev.value)
	}
	// The history is written first: it encodes the previous value, which
	// aliases the page the put below may overwrite.
	if err := s.recordChange(rev, ch); err != nil {
		return err
	}
	if ch.prev.lease != lease {
		if err := s.attach(key, ch.prev.lease, lease); err != nil {
			return err
		}
	}
	if err := bk.Put([]byte(key), ch.cur.encode()); err != nil {
		return fmt.Errorf("put a key of %d bytes: %w", len(key), err)
	}
	if !ch.existed {
		s.meta.keys++
	}
	s.meta.used = used
	s.meta.revision = rev
	s.events = append(s.events, ch.event())
	return nil
}

// CostOf is what key counts against the quota as written now; ok is false
// if it is absent.
func (s *Store) CostOf(key string) (cost uint64, ok bool, err error) {
	v := s.be.Tx().Bucket(bucketKV).Get([]byte(key))
	if v == nil {
		return 0, false, nil
	}
	r, err := decodeRecord(v)
	if err != nil {
		return 0, false, err
	}
	return Cost(key, r.value), true, nil
}

// DeleteRange deletes key, or the keys in [key, end), at revision rev and
// says how many there were.
func (s *Store) DeleteRange(key, end string, rev uint64) (int, error) {
	n, _, err := s.deleteRange(key, end, rev, false)
	return n, err
}

// deleteRange is DeleteRange, which with prev also returns the keys it
// removed as they were, in key order, values copied (etcd's prev_kv).
func (s *Store) deleteRange(key, end string, rev uint64, prev bool) (int, []messages.KV, error) {
	keys := []string{key}
	if end != "" {
		keys = keys[:0]
		c := s.be.Tx().Bucket(bucketKV).Cursor()
		for k, _ := c.Seek([]byte(key)); k != nil && InRange(string(k), key, end); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
	}
	n := 0
	var prevs []messages.KV
	for _, k := range keys {
		was, err := s.del(k, rev)
		if err != nil {
			return n, nil, err
		}
		if was != nil {
			n++
			if prev {
				prevs = append(prevs, *was)
			}
		}
	}
	return n, prevs, nil
}

// del removes key at revision rev and returns the record it had, its value
// a copy; deleting an absent key changes nothing (nil).
func (s *Store) del(key string, rev uint64) (*messages.KV, error) {
	bk := s.be.Tx().Bucket(bucketKV)
	old := bk.Get([]byte(key))
	if old == nil {
		return nil, nil
	}
	prev, err := decodeRecord(old)
	if err != nil {
		return nil, err
	}
	ch := change{typ: messages.EventDelete, key: key, cur: record{modRev: rev}, prev: prev, existed: true}
	if err := s.recordChange(rev, ch); err != nil {
		return nil, err
	}
	// The event is made before the delete: its previous value aliases the
	// page the delete frees (the event copies it).
	ev := ch.event()
	if prev.lease != 0 {
		if err := s.attach(key, prev.lease, 0); err != nil {
			return nil, err
		}
	}
	if err := bk.Delete([]byte(key)); err != nil {
		return nil, fmt.Errorf("delete a key of %d bytes: %w", len(key), err)
	}
	s.meta.keys--
	s.meta.used -= Cost(key, prev.value)
	s.meta.revision = rev
	s.events = append(s.events, ev)
	return ev.Prev, nil
}

// Load writes a key of a state restored whole (inline snapshot data) at
// revision rev: no history, since nothing before rev is known, and no
// quota, since the state was within it where it was made. Inline snapshot
// data (raftexample's, the previous layout's) knows no leases.
func (s *Store) Load(key string, value []byte, rev uint64) error {
	bk := s.be.Tx().Bucket(bucketKV)
	if bk.Get([]byte(key)) != nil {
		return fmt.Errorf("%w: a key of %d bytes given twice", ErrBadSnapshot, len(key))
	}
	if err := bk.Put([]byte(key), record{createRev: rev, modRev: rev, version: 1, value: value}.encode()); err != nil {
		return fmt.Errorf("put a key of %d bytes: %w", len(key), err)
	}
	s.meta.keys++
	s.meta.used += Cost(key, value)
	return nil
}

// Reset empties the whole state, for a restore from inline snapshot data
// (raftexample's JSON, or a snapshot of the previous layout) at revision
// rev: the history starts there. The leases go too: such data holds none.
func (s *Store) Reset(rev uint64) error {
	tx := s.be.Tx()
	for _, name := range [][]byte{bucketKV, bucketHistory, bucketMembers, bucketRemoved, bucketLeases, bucketLeaseKeys} {
		if err := tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("empty bucket %s: %w", name, err)
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if err := resetDedup(tx); err != nil {
		return err
	}
	s.meta.keys, s.meta.used = 0, 0
	s.meta.histEvents, s.meta.histBytes = 0, 0
	s.meta.revision, s.meta.compacted = rev, rev
	s.histRev, s.histSeq, s.histFloor = 0, 0, nil
	s.members, s.removed, s.clients = make(map[uint64]string), make(map[uint64]bool), make(map[uint64][]string)
	s.events = nil
	return nil
}

// SnapshotReader streams the db as of its last commit, for a follower that
// needs a snapshot; index is the applied index the stream holds. Any
// goroutine may call it.
func (s *Store) SnapshotReader() (rc io.ReadCloser, index uint64, err error) {
	tx, err := s.be.ReadTx()
	if err != nil {
		return nil, 0, err
	}
	m, err := readMeta(tx, false)
	if err != nil {
		_ = tx.Rollback()
		return nil, 0, err
	}
	return backend.Stream(tx), m.applied, nil
}

// ReadEvents calls fn for the events of the db's committed history with
// revision ≥ from, in order, whole revisions at a time, until at least
// maxEvents were passed. through is the last revision covered: every event
// with from ≤ revision ≤ through was passed, and through ≥ from-1; when it
// equals the committed revision, the history was read to its end. A from
// the history no longer reaches fails with a *messages.CompactedError.
// Any goroutine may call it, while the owner writes: it reads the last
// commit, in a read transaction of its own.
func (s *Store) ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (through uint64, err error) {
	tx, err := s.be.ReadTx()
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	m, err := readMeta(tx, false)
	if err != nil {
		return 0, err
	}
	return readEvents(tx, m, from, maxEvents, fn)
}
