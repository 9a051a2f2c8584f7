package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/messages"
)

// Leases, as etcd's lessor keeps them in its backend: each lease the state
// holds, with its TTL granted and the remaining TTL last checkpointed, and
// the keys attached to it. Deadlines are not state: only the leader keeps
// them (package kv), and a lease's keys are deleted when its revocation is
// applied, at the revocation's revision, on every member alike.
//
// The leases bucket keeps, under the lease id (8 bytes, big-endian, so
// that the bucket's order is the ids' order: ids are > 0),
//
//	TTL granted | remaining TTL checkpointed (0: none) | index granted
//
// each a uvarint. The index granted is the applied index when the grant
// was applied, its entry's: it lets a replay of that entry prove the
// grant, as a key's mod revision proves a put.
//
// The lease_keys bucket is the index of the keys attached: id (8 bytes,
// big-endian) | key → empty, so that a revocation and a listing read only
// the lease's keys, never every key.

// LeaseIndexOverhead is what the lease index adds to a key attached to a
// lease: the id in front of it in the index's bbolt key. A key attached to
// a lease may therefore be at most bbolt's key limit less this; the applier
// refuses a longer one (the API's limit is far below either).
const LeaseIndexOverhead = 8

// errBadLease is a lease operation no entry can ask for: the applier
// checks ids and TTLs when it decodes them.
var errBadLease = errors.New("lease id must be > 0, and TTLs ≥ 0")

// LeaseRecord is a lease as the state holds it.
type LeaseRecord struct {
	ID  int64
	TTL int64 // granted, in seconds
	// Remaining is the TTL left, in seconds, at the last checkpoint
	// (CheckpointLease); 0 if none since the grant, or since a keep-alive
	// cleared it.
	Remaining int64
	// Granted is the index of the entry that granted the lease.
	Granted uint64
}

func (l LeaseRecord) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(l.TTL))
	b = binary.AppendUvarint(b, uint64(l.Remaining))
	return binary.AppendUvarint(b, l.Granted)
}

func decodeLease(id, b []byte) (LeaseRecord, error) {
	bad := fmt.Errorf("%w: lease record", ErrBadDB)
	if len(id) != 8 {
		return LeaseRecord{}, bad
	}
	r := wire.Reader{B: b}
	ttl, remaining, granted := r.Uvarint(), r.Uvarint(), r.Uvarint()
	if r.Err != nil || len(r.B) != 0 || ttl > math.MaxInt64 || remaining > math.MaxInt64 {
		return LeaseRecord{}, bad
	}
	return LeaseRecord{ID: int64(binary.BigEndian.Uint64(id)), TTL: int64(ttl), Remaining: int64(remaining), Granted: granted}, nil
}

// leaseKey is a lease's key in the leases bucket, and the prefix of its
// keys' in the index.
func leaseKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func leaseIndexKey(id int64, key string) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, LeaseIndexOverhead+len(key)), uint64(id)), key...)
}

// checkLease refuses a put's lease that the state does not hold; 0 is no
// lease.
func (s *Store) checkLease(id int64) error {
	if id == 0 {
		return nil
	}
	if id < 0 || s.be.Tx().Bucket(bucketLeases).Get(leaseKey(id)) == nil {
		return fmt.Errorf("%w: %d", messages.ErrLeaseNotFound, id)
	}
	return nil
}

// attach moves key's entry in the lease index from lease from to lease to
// (either 0: none).
func (s *Store) attach(key string, from, to int64) error {
	bk := s.be.Tx().Bucket(bucketLeaseKeys)
	if from != 0 {
		if err := bk.Delete(leaseIndexKey(from, key)); err != nil {
			return fmt.Errorf("detach a key of %d bytes from lease %d: %w", len(key), from, err)
		}
	}
	if to != 0 {
		if err := bk.Put(leaseIndexKey(to, key), nil); err != nil {
			return fmt.Errorf("attach a key of %d bytes to lease %d: %w", len(key), to, err)
		}
	}
	return nil
}

// GrantLease records lease id (> 0) of ttl seconds, granted at the applied
// index (the entry's, which the applier sets before applying it). An id
// the state holds is messages.ErrLeaseExists, and nothing changes. The
// revision does not move: no key changed, as in etcd.
func (s *Store) GrantLease(id, ttl int64) error {
	if id <= 0 || ttl < 0 {
		return fmt.Errorf("grant lease %d of %d s: %w", id, ttl, errBadLease)
	}
	bk := s.be.Tx().Bucket(bucketLeases)
	if bk.Get(leaseKey(id)) != nil {
		return fmt.Errorf("%w: %d", messages.ErrLeaseExists, id)
	}
	if err := bk.Put(leaseKey(id), LeaseRecord{TTL: ttl, Granted: s.meta.applied}.encode()); err != nil {
		return fmt.Errorf("write lease %d: %w", id, err)
	}
	return nil
}

// RevokeLease deletes every key attached to lease id, all at revision rev,
// in key order (one entry, one revision: a watcher sees the deletes
// together, with one event each), and then the lease. A lease the state
// does not hold is messages.ErrLeaseNotFound, and nothing changes. A lease
// without keys leaves the revision where it was, as in etcd.
func (s *Store) RevokeLease(id int64, rev uint64) (deleted int, err error) {
	bk := s.be.Tx().Bucket(bucketLeases)
	if id <= 0 || bk.Get(leaseKey(id)) == nil {
		return 0, fmt.Errorf("%w: %d", messages.ErrLeaseNotFound, id)
	}
	keys, err := s.LeaseKeys(id)
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		// The index and the records are written together; a key the
		// index names that is not attached here would outlive the lease.
		r, found, err := s.get(k)
		if err != nil {
			return deleted, err
		}
		if !found || r.lease != id {
			return deleted, fmt.Errorf("%w: lease %d indexes a key of %d bytes not attached to it", ErrBadDB, id, len(k))
		}
		// del removes the key's index entry, with the key.
		if _, err := s.del(k, rev); err != nil {
			return deleted, err
		}
		deleted++
	}
	if err := bk.Delete(leaseKey(id)); err != nil {
		return deleted, fmt.Errorf("delete lease %d: %w", id, err)
	}
	return deleted, nil
}

// CheckpointLease records remaining, the TTL the leader's deadline left
// lease id (0 clears it: a keep-alive renewed the lease whole), so that a
// new leader starts its deadline there rather than at the TTL granted: a
// holder that died does not keep its lease alive for ever by outliving
// leaders. A lease the state does not hold (revoked while the checkpoint
// was in flight) changes nothing.
func (s *Store) CheckpointLease(id, remaining int64) error {
	if remaining < 0 {
		return fmt.Errorf("checkpoint lease %d at %d s: %w", id, remaining, errBadLease)
	}
	l, ok, err := s.Lease(id)
	if err != nil || !ok {
		return err
	}
	l.Remaining = remaining
	if err := s.be.Tx().Bucket(bucketLeases).Put(leaseKey(id), l.encode()); err != nil {
		return fmt.Errorf("write lease %d: %w", id, err)
	}
	return nil
}

// Lease reads lease id as written, committed or not; ok is false if the
// state does not hold it.
func (s *Store) Lease(id int64) (l LeaseRecord, ok bool, err error) {
	if id <= 0 {
		return LeaseRecord{}, false, nil
	}
	k := leaseKey(id)
	v := s.be.Tx().Bucket(bucketLeases).Get(k)
	if v == nil {
		return LeaseRecord{}, false, nil
	}
	l, err = decodeLease(k, v)
	return l, err == nil, err
}

// Leases lists the leases the state holds, as written, by id.
func (s *Store) Leases() ([]LeaseRecord, error) {
	var out []LeaseRecord
	err := s.be.Tx().Bucket(bucketLeases).ForEach(func(k, v []byte) error {
		l, err := decodeLease(k, v)
		if err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LeaseKeys lists the keys attached to lease id, in order; none if the
// state does not hold it.
func (s *Store) LeaseKeys(id int64) ([]string, error) {
	if id <= 0 {
		return nil, nil
	}
	prefix := leaseKey(id)
	var keys []string
	c := s.be.Tx().Bucket(bucketLeaseKeys).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, string(k[len(prefix):]))
	}
	return keys, nil
}
