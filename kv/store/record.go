package store

import (
	"encoding/binary"
	"fmt"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/messages"
)

// recordOverhead is what a key costs beyond its bytes in the quota's
// accounting: its three revision varints and bbolt's per-element header
// (16 bytes), rounded up. It makes a flood of empty values count.
const recordOverhead = 32

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
	return wire.UvarintLen(r.createRev) + wire.UvarintLen(r.modRev) + wire.UvarintLen(r.version) + len(r.value)
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

func (r record) kv(key string) messages.KV {
	return messages.KV{Key: key, Value: r.value, CreateRevision: r.createRev, ModRevision: r.modRev, Version: r.version}
}

// Cost is what a key and value count against the space quota.
func Cost(key string, value []byte) uint64 { return uint64(len(key)+len(value)) + recordOverhead }
