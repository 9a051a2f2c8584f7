package store

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/messages"
)

// recordOverhead is what a key costs beyond its bytes in the quota's
// accounting: its three revision varints and bbolt's per-element header
// (16 bytes), rounded up. It makes a flood of empty values count. A key
// with a lease costs the same: its lease varint and index entry are small
// next to the header, and a put must count alike with or without one.
const recordOverhead = 32

// record is a key's value with its revisions: the raft index that created
// the key (since it was last absent), the index of its last write, and the
// number of writes since its creation; and the lease it is attached to (0:
// none).
//
// A record is kept in one of two forms:
//
//	plain:    create revision | mod revision | version | value
//	extended: 0 | create revision | mod revision | version | lease | value
//
// every integer a uvarint. A record without a lease is plain, as every
// layout before raftkv-3 wrote it, so their records read unchanged. The
// extended form starts with 0, which no plain record starts with: a key's
// create revision is the index of the entry that wrote it, never 0.
// (A record made at revision 0, which only a caller outside raft could
// ask for, is extended too, so that it is never mistaken for the marker.)
type record struct {
	createRev, modRev, version uint64
	lease                      int64
	value                      []byte
}

func (r record) encode() []byte { return r.appendTo(make([]byte, 0, r.size())) }

// extended says whether r is kept in the extended form.
func (r record) extended() bool { return r.lease != 0 || r.createRev == 0 }

// size is the length of the record's encoding.
func (r record) size() int {
	n := r.plainSize()
	if r.extended() {
		n += 1 + wire.UvarintLen(uint64(r.lease))
	}
	return n
}

func (r record) plainSize() int {
	return wire.UvarintLen(r.createRev) + wire.UvarintLen(r.modRev) + wire.UvarintLen(r.version) + len(r.value)
}

func (r record) appendTo(b []byte) []byte {
	if !r.extended() {
		return r.appendPlain(b)
	}
	b = append(b, 0)
	b = binary.AppendUvarint(b, r.createRev)
	b = binary.AppendUvarint(b, r.modRev)
	b = binary.AppendUvarint(b, r.version)
	b = binary.AppendUvarint(b, uint64(r.lease))
	return append(b, r.value...)
}

// appendPlain writes r in the plain form, lease or not: the history keeps
// a delete's record (its mod revision alone, create revision 0) so, as
// every layout did.
func (r record) appendPlain(b []byte) []byte {
	b = binary.AppendUvarint(b, r.createRev)
	b = binary.AppendUvarint(b, r.modRev)
	b = binary.AppendUvarint(b, r.version)
	return append(b, r.value...)
}

// decodeRecord parses a record of either form; its value aliases b.
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 || b[0] != 0 {
		return decodePlainRecord(b)
	}
	var r record
	b = b[1:]
	var lease uint64
	for _, f := range []*uint64{&r.createRev, &r.modRev, &r.version, &lease} {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return record{}, fmt.Errorf("%w: truncated record", ErrBadDB)
		}
		*f, b = v, b[n:]
	}
	if lease > math.MaxInt64 {
		return record{}, fmt.Errorf("%w: a record's lease out of range", ErrBadDB)
	}
	r.lease, r.value = int64(lease), b
	return r, nil
}

// decodePlainRecord parses a record of the plain form; its value aliases
// b.
func decodePlainRecord(b []byte) (record, error) {
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
	return messages.KV{Key: key, Value: r.value, CreateRevision: r.createRev, ModRevision: r.modRev, Version: r.version, Lease: r.lease}
}

// Cost is what a key and value count against the space quota.
func Cost(key string, value []byte) uint64 { return uint64(len(key)+len(value)) + recordOverhead }
