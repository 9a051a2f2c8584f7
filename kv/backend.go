package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/messages"
)

// The state machine's data lives in one bbolt file per member, as etcd's
// backend does: keys and values in the file's pages (the page cache, not
// the Go heap), the applied index and ConfState in the same transactions as
// the data they describe.
//
// Buckets:
//
//	kv       key → record (create revision | mod revision | version | value)
//	history  revision | sequence → event (history.go): the recent changes
//	members  id (8 bytes, big-endian) → peer URL | client URLs
//	removed  id → (empty): members removed from the cluster
//	dedup    proposer → the request ids it had applied lately (dedup.go);
//	         made with the first id in a db of an older build
//	meta     layout, applied index and term, ConfState, key count, bytes
//	         used, store revision, the history's extent
var (
	bucketKV      = []byte("kv")
	bucketHistory = []byte("history")
	bucketMembers = []byte("members")
	bucketRemoved = []byte("removed")
	bucketMeta    = []byte("meta")

	metaLayout     = []byte("layout")
	metaApplied    = []byte("applied_index")
	metaTerm       = []byte("applied_term")
	metaConfState  = []byte("conf_state")
	metaKeys       = []byte("keys")
	metaUsed       = []byte("used_bytes")
	metaRevision   = []byte("revision")
	metaCompacted  = []byte("compacted_revision")
	metaHistEvents = []byte("history_events")
	metaHistBytes  = []byte("history_bytes")
)

// layoutVersion is written in every db this package makes; a db of another
// layout is refused, not misread, except layoutV1, which lacks only the
// history and is upgraded when opened for writing.
const (
	layoutVersion = "raftkv-2"
	layoutV1      = "raftkv-1"
)

// DBFile is the name of the state machine's db in a data dir.
const DBFile = "db"

// Sizes of the db, each with the reason for it.
const (
	// initialMmapSize is reserved address space, not memory: bbolt remaps
	// as the file grows, and a remap waits for every read transaction, such
	// as a snapshot being streamed to a follower. 10 GiB is etcd's value:
	// no remap before the file reaches it.
	initialMmapSize = 10 << 30
	// recordOverhead is what a key costs beyond its bytes in the quota's
	// accounting: its three revision varints and bbolt's per-element
	// header (16 bytes), rounded up. It makes a flood of empty values count.
	recordOverhead = 32
)

// Sentinel errors of the backend.
var (
	// ErrBadDB is returned for a db file this package cannot read: not a
	// bbolt file, another layout, or meta data that does not decode.
	ErrBadDB = errors.New("state machine db is unreadable")
	// ErrNoSpace is the answer to a write that would take the db's used
	// space past the quota (--quota-backend-bytes). Nothing was written;
	// deletes are never refused, and free space for later writes.
	ErrNoSpace = errors.New("database space exceeded: the write would take the data past the quota")
)

// dbMeta is what a db records of the state it holds.
type dbMeta struct {
	applied, term uint64
	confState     *raftpb.ConfState
	keys          uint64 // keys in the kv bucket
	used          uint64 // logical bytes: keys, values and recordOverhead each
	// revision is the index of the last entry that changed a key: the
	// store's revision.
	revision uint64
	// compacted is the newest revision the history no longer holds: it
	// holds every event after it.
	compacted  uint64
	histEvents uint64 // events in the history bucket
	histBytes  uint64 // their encoded size
}

// backend is the kv actor's db: one write transaction kept open and
// committed in batches (commit), reads served from it so that they see what
// was applied, committed or not. Only the kv actor uses it, except
// snapshotReader, which any goroutine may call (read transactions see the
// last commit, and its applied index, whole).
type backend struct {
	path string

	mu sync.Mutex // guards db against replace, for snapshotReader
	db *bolt.DB

	tx      *bolt.Tx
	meta    dbMeta
	pending int // entries applied since the last commit
	// histRev and histSeq number the history's events: the revision of
	// the last one written and the next sequence number within it.
	histRev uint64
	histSeq uint32
	// failed is set after a fatal error: what the transaction holds may be
	// half done, and close rolls it back instead of committing it.
	failed bool
}

// openBackend opens (or creates) the db at path. fresh reports that it did
// not exist.
func openBackend(path string) (b *backend, fresh bool, err error) {
	_, statErr := os.Stat(path)
	fresh = errors.Is(statErr, os.ErrNotExist)
	db, err := openDB(path, false)
	if err != nil {
		return nil, false, err
	}
	b = &backend{path: path, db: db}
	if err := b.begin(); err != nil {
		_ = db.Close()
		return nil, false, err
	}
	if fresh {
		// The layout made durable at once: readers of the last commit
		// (State.ReadEvents, a snapshot stream) find a db, if an empty one.
		if err := b.commit(); err != nil {
			_ = b.close()
			return nil, false, err
		}
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
		return nil, fmt.Errorf("%w: open %s: %w", ErrBadDB, path, err)
	}
	return db, nil
}

// begin opens the write transaction, making the layout on a new db and
// reading the meta data of an existing one.
func (b *backend) begin() error {
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin a write transaction on %s: %w", b.path, err)
	}
	m, err := readMeta(tx, true)
	if err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("%s: %w", b.path, err)
	}
	b.tx, b.meta = tx, m
	b.histRev, b.histSeq = 0, 0
	return nil
}

// readMeta reads a db's meta data; create makes the buckets of a new one.
func readMeta(tx *bolt.Tx, create bool) (dbMeta, error) {
	var m dbMeta
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if !create {
			return m, fmt.Errorf("%w: no meta bucket", ErrBadDB)
		}
		for _, name := range [][]byte{bucketKV, bucketHistory, bucketMembers, bucketRemoved, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return m, fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if err := createDedupBucket(tx); err != nil {
			return m, err
		}
		if err := tx.Bucket(bucketMeta).Put(metaLayout, []byte(layoutVersion)); err != nil {
			return m, fmt.Errorf("write the layout: %w", err)
		}
		m.confState = &raftpb.ConfState{}
		return m, nil
	}
	layout := string(meta.Get(metaLayout))
	if layout != layoutVersion && layout != layoutV1 {
		return m, fmt.Errorf("%w: layout %q, want %q", ErrBadDB, layout, layoutVersion)
	}
	for _, name := range [][]byte{bucketKV, bucketMembers, bucketRemoved} {
		if tx.Bucket(name) == nil {
			return m, fmt.Errorf("%w: no bucket %s", ErrBadDB, name)
		}
	}
	m.applied = u64(meta.Get(metaApplied))
	m.term = u64(meta.Get(metaTerm))
	m.keys = u64(meta.Get(metaKeys))
	m.used = u64(meta.Get(metaUsed))
	if layout == layoutV1 {
		// No history and no revision: the revision of its last write is
		// at most the applied index, and the history starts there.
		m.revision, m.compacted = m.applied, m.applied
		if create {
			if _, err := tx.CreateBucket(bucketHistory); err != nil {
				return m, fmt.Errorf("create bucket %s: %w", bucketHistory, err)
			}
			if err := meta.Put(metaLayout, []byte(layoutVersion)); err != nil {
				return m, fmt.Errorf("write the layout: %w", err)
			}
		}
	} else {
		if tx.Bucket(bucketHistory) == nil {
			return m, fmt.Errorf("%w: no bucket %s", ErrBadDB, bucketHistory)
		}
		m.revision = u64(meta.Get(metaRevision))
		m.compacted = u64(meta.Get(metaCompacted))
		m.histEvents = u64(meta.Get(metaHistEvents))
		m.histBytes = u64(meta.Get(metaHistBytes))
	}
	m.confState = &raftpb.ConfState{}
	if cs := meta.Get(metaConfState); len(cs) > 0 {
		if err := proto.Unmarshal(cs, m.confState); err != nil {
			return m, fmt.Errorf("%w: conf state: %w", ErrBadDB, err)
		}
	}
	return m, nil
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func put64(bk *bolt.Bucket, key []byte, v uint64) error {
	return bk.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// setApplied records the index (and term) of the last entry applied and
// the ConfState as of it; they reach the disk with the data, at commit.
func (b *backend) setApplied(index, term uint64, cs *raftpb.ConfState) {
	b.meta.applied, b.meta.term = index, term
	if cs != nil {
		b.meta.confState = cs
	}
	b.pending++
}

// commit writes the meta data into the open transaction, commits it (and
// with it fsyncs the file) and opens the next one. An error leaves the
// backend unusable: the kv actor stops the member.
func (b *backend) commit() error {
	meta := b.tx.Bucket(bucketMeta)
	cs, err := proto.Marshal(b.meta.confState)
	if err != nil {
		return fmt.Errorf("encode the conf state: %w", err)
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{
		{metaApplied, b.meta.applied}, {metaTerm, b.meta.term}, {metaKeys, b.meta.keys}, {metaUsed, b.meta.used},
		{metaRevision, b.meta.revision}, {metaCompacted, b.meta.compacted},
		{metaHistEvents, b.meta.histEvents}, {metaHistBytes, b.meta.histBytes},
	} {
		if err := put64(meta, kv.k, kv.v); err != nil {
			return fmt.Errorf("write %s: %w", kv.k, err)
		}
	}
	if err := meta.Put(metaConfState, cs); err != nil {
		return fmt.Errorf("write the conf state: %w", err)
	}
	if err := b.tx.Commit(); err != nil {
		b.tx = nil
		return fmt.Errorf("commit %s: %w", b.path, err)
	}
	b.tx = nil
	b.pending = 0
	tx, err := b.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin a write transaction on %s: %w", b.path, err)
	}
	b.tx = tx
	return nil
}

// close commits what is applied and closes the file.
func (b *backend) close() error {
	var errs []error
	if b.tx != nil && !b.failed {
		if err := b.commit(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.tx != nil {
		_ = b.tx.Rollback() // after a failure, or a failed commit
		b.tx = nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close %s: %w", b.path, err))
	}
	return errors.Join(errs...)
}

// record is a key's value with its revisions: the raft index that created
// the key (since it was last absent), the index of its last write, and the
// number of writes since its creation.
type record struct {
	createRev, modRev, version uint64
	value                      []byte
}

func (r record) encode() []byte { return r.appendTo(make([]byte, 0, r.size())) }

// size is the length of the record's encoding.
func (r record) size() int {
	return uvarintLen(r.createRev) + uvarintLen(r.modRev) + uvarintLen(r.version) + len(r.value)
}

func (r record) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, r.createRev)
	b = binary.AppendUvarint(b, r.modRev)
	b = binary.AppendUvarint(b, r.version)
	return append(b, r.value...)
}

// decodeRecord parses a record; its value aliases b.
func decodeRecord(b []byte) (record, error) {
	var r record
	for _, f := range []*uint64{&r.createRev, &r.modRev, &r.version} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return record{}, fmt.Errorf("%w: truncated record", ErrBadDB)
		}
		*f, b = v, b[n:]
	}
	r.value = b
	return r, nil
}

// cost is what a key and value count against the quota.
func cost(key string, value []byte) uint64 { return uint64(len(key)+len(value)) + recordOverhead }

// put writes key at revision rev, refusing with ErrNoSpace a write that
// takes the used bytes past quota (0 means no quota). Whether it fits
// depends only on the log applied so far, so every member decides alike.
// It records the change in the history and returns it.
func (b *backend) put(key string, value []byte, rev, quota uint64) (change, error) {
	bk := b.tx.Bucket(bucketKV)
	ch := change{typ: messages.EventPut, key: key, cur: record{createRev: rev, modRev: rev, version: 1, value: value}}
	used := b.meta.used + cost(key, value)
	if old := bk.Get([]byte(key)); old != nil {
		prev, err := decodeRecord(old)
		if err != nil {
			return change{}, err
		}
		ch.cur.createRev, ch.cur.version = prev.createRev, prev.version+1
		ch.prev, ch.existed = prev, true
		used -= cost(key, prev.value)
	}
	if quota > 0 && used > quota && used > b.meta.used {
		return change{}, fmt.Errorf("%w (%d bytes used of %d)", ErrNoSpace, b.meta.used, quota)
	}
	// The history is written first: it encodes the previous value, which
	// aliases the page the put below may overwrite.
	if err := b.recordChange(rev, ch); err != nil {
		return change{}, err
	}
	if err := bk.Put([]byte(key), ch.cur.encode()); err != nil {
		return change{}, fmt.Errorf("put a key of %d bytes: %w", len(key), err)
	}
	if !ch.existed {
		b.meta.keys++
	}
	b.meta.used = used
	b.meta.revision = rev
	return ch, nil
}

// load writes a key of a state restored whole (inline snapshot data) at
// revision rev: no history, since nothing before rev is known, and no quota,
// since the state was within it where it was made.
func (b *backend) load(key string, value []byte, rev uint64) error {
	bk := b.tx.Bucket(bucketKV)
	if bk.Get([]byte(key)) != nil {
		return fmt.Errorf("%w: a key of %d bytes given twice", ErrBadSnapshot, len(key))
	}
	if err := bk.Put([]byte(key), record{createRev: rev, modRev: rev, version: 1, value: value}.encode()); err != nil {
		return fmt.Errorf("put a key of %d bytes: %w", len(key), err)
	}
	b.meta.keys++
	b.meta.used += cost(key, value)
	return nil
}

// del removes key at revision rev; deleting an absent key changes nothing
// (ok false).
func (b *backend) del(key string, rev uint64) (ch change, ok bool, err error) {
	bk := b.tx.Bucket(bucketKV)
	old := bk.Get([]byte(key))
	if old == nil {
		return change{}, false, nil
	}
	prev, err := decodeRecord(old)
	if err != nil {
		return change{}, false, err
	}
	ch = change{typ: messages.EventDelete, key: key, cur: record{modRev: rev}, prev: prev, existed: true}
	if err := b.recordChange(rev, ch); err != nil {
		return change{}, false, err
	}
	if err := bk.Delete([]byte(key)); err != nil {
		return change{}, false, fmt.Errorf("delete a key of %d bytes: %w", len(key), err)
	}
	b.meta.keys--
	b.meta.used -= cost(key, prev.value)
	b.meta.revision = rev
	return ch, true, nil
}

// get reads key as applied. The record is copied out of the transaction,
// whose memory is reused once it commits.
func (b *backend) get(key string) (record, bool, error) {
	v := b.tx.Bucket(bucketKV).Get([]byte(key))
	if v == nil {
		return record{}, false, nil
	}
	r, err := decodeRecord(bytes.Clone(v))
	return r, err == nil, err
}

// forEach calls fn for every key in order, with the record as stored (its
// value valid only during the call).
func forEach(tx *bolt.Tx, fn func(key []byte, r record) error) error {
	return tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		return fn(k, r)
	})
}

// memberRecord is a member as the members bucket keeps it.
type memberRecord struct {
	peerURL    string
	clientURLs []string
}

func (m memberRecord) encode() []byte {
	b := appendBytes(nil, []byte(m.peerURL))
	b = binary.AppendUvarint(b, uint64(len(m.clientURLs)))
	for _, u := range m.clientURLs {
		b = appendBytes(b, []byte(u))
	}
	return b
}

func decodeMember(b []byte) (memberRecord, error) {
	r := reader{b: b}
	m := memberRecord{peerURL: string(r.bytes())}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		return m, fmt.Errorf("%w: member record", ErrBadDB)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		m.clientURLs = append(m.clientURLs, string(r.bytes()))
	}
	if r.err != nil || len(r.b) != 0 {
		return m, fmt.Errorf("%w: member record", ErrBadDB)
	}
	return m, nil
}

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// setMember writes (or, with del, removes) a member's record, keeping the
// removed ids in step: a member added is no longer removed, one removed is.
func (b *backend) setMember(id uint64, m memberRecord, del bool) error {
	members, removed := b.tx.Bucket(bucketMembers), b.tx.Bucket(bucketRemoved)
	var err error
	if del {
		if err = members.Delete(idKey(id)); err == nil {
			err = removed.Put(idKey(id), nil)
		}
	} else if err = members.Put(idKey(id), m.encode()); err == nil {
		err = removed.Delete(idKey(id))
	}
	if err != nil {
		return fmt.Errorf("write member %d: %w", id, err)
	}
	return nil
}

// readMembers reads the member lists of a transaction.
func readMembers(tx *bolt.Tx) (map[uint64]memberRecord, map[uint64]bool, error) {
	members, removed := make(map[uint64]memberRecord), make(map[uint64]bool)
	err := tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
		m, err := decodeMember(v)
		if err != nil {
			return err
		}
		members[u64(k)] = m
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	err = tx.Bucket(bucketRemoved).ForEach(func(k, _ []byte) error {
		removed[u64(k)] = true
		return nil
	})
	return members, removed, err
}

// reset empties the state, for a restore from a snapshot that carries it
// inline (raftexample's JSON, or a snapshot of the previous layout).
func (b *backend) reset() error {
	for _, name := range [][]byte{bucketKV, bucketHistory, bucketMembers, bucketRemoved} {
		if err := b.tx.DeleteBucket(name); err != nil {
			return fmt.Errorf("empty bucket %s: %w", name, err)
		}
		if _, err := b.tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if err := resetDedup(b.tx); err != nil {
		return err
	}
	b.meta.keys, b.meta.used = 0, 0
	b.meta.histEvents, b.meta.histBytes = 0, 0
	b.histRev, b.histSeq = 0, 0
	return nil
}

// snapshotReader streams the db as of its last commit, for a follower that
// needs a snapshot: a read transaction written out by a goroutine into a
// pipe, so that neither side holds more than the pipe's buffer. Closing the
// reader ends the transaction. index is the applied index the stream holds.
func (b *backend) snapshotReader() (rc io.ReadCloser, index uint64, err error) {
	b.mu.Lock()
	tx, err := b.db.Begin(false)
	b.mu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("begin a read transaction: %w", err)
	}
	m, err := readMeta(tx, false)
	if err != nil {
		_ = tx.Rollback()
		return nil, 0, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := tx.WriteTo(pw)
		_ = tx.Rollback()
		pw.CloseWithError(err)
	}()
	return &txReader{PipeReader: pr, done: done}, m.applied, nil
}

// txReader is the reading end of a snapshot stream; Close waits for the
// writing goroutine, so that its read transaction is over when Close
// returns.
type txReader struct {
	*io.PipeReader
	done chan struct{}
}

func (r *txReader) Close() error {
	err := r.PipeReader.CloseWithError(io.ErrClosedPipe)
	<-r.done
	return err
}

// replace swaps in the db at path (a snapshot received from the leader and
// checked by receiveSnapshotDB) for the current one, atomically by rename:
// a crash leaves one or the other whole.
func (b *backend) replace(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("the db to install: %w", err)
	}
	if b.tx != nil {
		_ = b.tx.Rollback() // the state is replaced whole: nothing to keep
		b.tx = nil
	}
	b.pending = 0
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", b.path, err)
	}
	if err := os.Rename(path, b.path); err != nil {
		return fmt.Errorf("install %s as %s: %w", path, b.path, err)
	}
	if err := syncDir(filepath.Dir(b.path)); err != nil {
		return err
	}
	db, err := openDB(b.path, false)
	if err != nil {
		return err
	}
	b.db = db
	return b.begin()
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
