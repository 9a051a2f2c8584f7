package kv

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// digest hashes the key-value state in key order (the db's order), each key
// and value with its length in front, so that no two states share a digest
// by concatenation. The member list and the revisions are left out: they
// are not key-value state, and in raftexample's format members need not
// agree on URLs.
func (s *store) digest() (string, error) {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	err := forEach(s.be.tx, func(k []byte, r record) error {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		h.Write(k)
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(r.value)))])
		h.Write(r.value)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
