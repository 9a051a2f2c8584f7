package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The db's buckets:
//
//	kv       key → record (create revision | mod revision | version |
//	         value; with the lease, if any: record.go)
//	history  revision | sequence → event (history.go): the recent changes
//	members  id (8 bytes, big-endian) → peer URL | client URLs
//	removed  id → (empty): members removed from the cluster
//	dedup    proposer → the request ids it had applied lately (dedup.go);
//	         made with the first id in a db of an older build
//	leases   id (8 bytes, big-endian) → lease record (lease.go)
//	lease_keys  id (8 bytes, big-endian) | key → (empty): the keys
//	         attached to each lease
//	meta     layout, applied index and term, ConfState, key count, bytes
//	         used, store revision, the history's extent
var (
	bucketKV        = []byte("kv")
	bucketHistory   = []byte("history")
	bucketMembers   = []byte("members")
	bucketRemoved   = []byte("removed")
	bucketLeases    = []byte("leases")
	bucketLeaseKeys = []byte("lease_keys")
	bucketMeta      = []byte("meta")

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
// layout is refused, not misread, except the two before it, which are
// upgraded when opened for writing: layoutV2 lacks only the lease buckets
// (its records are all of the plain form, which raftkv-3 reads unchanged),
// layoutV1 the history too. A db once upgraded names raftkv-3, so that a
// binary of an older layout refuses it rather than misread a record with a
// lease. Read-only opens (a received snapshot's db, ReadEvents,
// SnapshotReader) take all three as they are.
const (
	layoutVersion = "raftkv-3"
	layoutV2      = "raftkv-2"
	layoutV1      = "raftkv-1"
	// layoutPrefix and layoutNumber spell layoutVersion; a db naming a
	// higher number is a newer binary's.
	layoutPrefix = "raftkv-"
	layoutNumber = 3
)

// Layout is the layout this package writes in every db it makes or
// upgrades: the data dir's format (package version reports it).
const Layout = layoutVersion

// ErrBadDB is returned for a db file this package cannot read: not a
// bbolt file, a layout no binary wrote, or records that do not decode.
var ErrBadDB = errors.New("state machine db is unreadable")

// ErrNewerLayout is returned for a db whose layout a newer binary wrote.
// It is not ErrBadDB: such a db is sound, only not this binary's to read,
// so it must be left as it is (not moved aside and rebuilt from the log,
// whose entries this binary may not know either) for the newer binary.
var ErrNewerLayout = errors.New("the db was written by a newer version of node")

// meta is what a db records of the state it holds.
type meta struct {
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

// readMeta reads a db's meta data; create makes the buckets of a new one.
func readMeta(tx *bolt.Tx, create bool) (meta, error) {
	var m meta
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		if !create {
			return m, fmt.Errorf("%w: no meta bucket", ErrBadDB)
		}
		for _, name := range [][]byte{bucketKV, bucketHistory, bucketMembers, bucketRemoved, bucketLeases, bucketLeaseKeys, bucketMeta, bucketDedup} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return m, fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if err := tx.Bucket(bucketMeta).Put(metaLayout, []byte(layoutVersion)); err != nil {
			return m, fmt.Errorf("write the layout: %w", err)
		}
		m.confState = &raftpb.ConfState{}
		return m, nil
	}
	layout := string(mb.Get(metaLayout))
	if layout != layoutVersion && layout != layoutV2 && layout != layoutV1 {
		if n, err := strconv.Atoi(strings.TrimPrefix(layout, layoutPrefix)); err == nil && strings.HasPrefix(layout, layoutPrefix) && n > layoutNumber {
			return m, fmt.Errorf("%w: its layout is %s; this binary reads %s and upgrades %s and %s", ErrNewerLayout, layout, layoutVersion, layoutV2, layoutV1)
		}
		return m, fmt.Errorf("%w: layout %q, want %q (or %q or %q, which are upgraded)", ErrBadDB, layout, layoutVersion, layoutV2, layoutV1)
	}
	required := [][]byte{bucketKV, bucketMembers, bucketRemoved}
	if layout == layoutVersion {
		required = append(required, bucketLeases, bucketLeaseKeys)
	}
	for _, name := range required {
		if tx.Bucket(name) == nil {
			return m, fmt.Errorf("%w: no bucket %s", ErrBadDB, name)
		}
	}
	m.applied = u64(mb.Get(metaApplied))
	m.term = u64(mb.Get(metaTerm))
	m.keys = u64(mb.Get(metaKeys))
	m.used = u64(mb.Get(metaUsed))
	if layout == layoutV1 {
		// No history and no revision: the revision of its last write is
		// at most the applied index, and the history starts there.
		m.revision, m.compacted = m.applied, m.applied
		if create {
			if _, err := tx.CreateBucket(bucketHistory); err != nil {
				return m, fmt.Errorf("create bucket %s: %w", bucketHistory, err)
			}
		}
	} else {
		if tx.Bucket(bucketHistory) == nil {
			return m, fmt.Errorf("%w: no bucket %s", ErrBadDB, bucketHistory)
		}
		m.revision = u64(mb.Get(metaRevision))
		m.compacted = u64(mb.Get(metaCompacted))
		m.histEvents = u64(mb.Get(metaHistEvents))
		m.histBytes = u64(mb.Get(metaHistBytes))
	}
	if layout != layoutVersion && create {
		if err := upgradeLeases(tx); err != nil {
			return m, err
		}
	}
	m.confState = &raftpb.ConfState{}
	if cs := mb.Get(metaConfState); len(cs) > 0 {
		if err := proto.Unmarshal(cs, m.confState); err != nil {
			return m, fmt.Errorf("%w: conf state: %w", ErrBadDB, err)
		}
	}
	return m, nil
}

// upgradeLeases makes the lease buckets of a db of an older layout, and
// names the layout raftkv-3: from then on it may hold records with a lease,
// which an older binary must refuse rather than misread.
func upgradeLeases(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLeases, bucketLeaseKeys} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if err := tx.Bucket(bucketMeta).Put(metaLayout, []byte(layoutVersion)); err != nil {
		return fmt.Errorf("write the layout: %w", err)
	}
	return nil
}

// writeMeta writes m into tx, before the commit that makes the data it
// describes durable: both reach the disk together, or neither does.
func writeMeta(tx *bolt.Tx, m meta) error {
	mb := tx.Bucket(bucketMeta)
	cs, err := proto.Marshal(m.confState)
	if err != nil {
		return fmt.Errorf("encode the conf state: %w", err)
	}
	for _, kv := range []struct {
		k []byte
		v uint64
	}{
		{metaApplied, m.applied}, {metaTerm, m.term}, {metaKeys, m.keys}, {metaUsed, m.used},
		{metaRevision, m.revision}, {metaCompacted, m.compacted},
		{metaHistEvents, m.histEvents}, {metaHistBytes, m.histBytes},
	} {
		if err := put64(mb, kv.k, kv.v); err != nil {
			return fmt.Errorf("write %s: %w", kv.k, err)
		}
	}
	if err := mb.Put(metaConfState, cs); err != nil {
		return fmt.Errorf("write the conf state: %w", err)
	}
	return nil
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

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }
