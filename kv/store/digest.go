package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	bolt "go.etcd.io/bbolt"
)

// Digest hashes the key-value state in key order (the db's order), each key
// and value with its length in front, so that no two states share a digest
// by concatenation. A key attached to a lease has a 0 and the lease in
// front of that (no key's length is 0: the store holds no empty key), so
// that members that disagree on an attachment differ, while a state
// without leases hashes as it did before leases; the leases themselves
// follow the keys. The member list and the revisions are left out: they
// are not key-value state, and in raftexample's format members need not
// agree on URLs.
func (s *Store) Digest() (string, error) {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	uvarint := func(v uint64) { h.Write(n[:binary.PutUvarint(n[:], v)]) }
	err := s.be.Tx().Bucket(bucketKV).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		if r.lease != 0 {
			uvarint(0)
			uvarint(uint64(r.lease))
		}
		uvarint(uint64(len(k)))
		h.Write(k)
		uvarint(uint64(len(r.value)))
		h.Write(r.value)
		return nil
	})
	if err != nil {
		return "", err
	}
	// Then the leases, if any: after a 0, 0 (which no key's entry starts
	// with), each id, TTL and remaining TTL checkpointed, in id order. A
	// lease the members disagree on makes their digests differ.
	first := true
	err = s.be.Tx().Bucket(bucketLeases).ForEach(func(k, v []byte) error {
		l, err := decodeLease(k, v)
		if err != nil {
			return err
		}
		if first {
			uvarint(0)
			uvarint(0)
			first = false
		}
		uvarint(uint64(l.ID))
		uvarint(uint64(l.TTL))
		uvarint(uint64(l.Remaining))
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ForEach calls fn for every key of tx (the batch transaction, or a read
// transaction of the last commit) in order, with its value; both are valid
// only during the call.
func ForEach(tx *bolt.Tx, fn func(key, value []byte) error) error {
	return tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		return fn(k, r.value)
	})
}
