package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	bolt "go.etcd.io/bbolt"
)

// Digest hashes the key-value state in key order (the db's order), each key
// and value with its length in front, so that no two states share a digest
// by concatenation. The member list and the revisions are left out: they
// are not key-value state, and in raftexample's format members need not
// agree on URLs.
func (s *Store) Digest() (string, error) {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	err := ForEach(s.be.Tx(), func(k, v []byte) error {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		h.Write(k)
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		h.Write(v)
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
