// Package wire holds the framing every binary encoding of the state
// machine shares: uvarint lengths in front of byte strings, decoded only
// in their shortest form so that each value has exactly one encoding.
// The entry codecs (package apply) and the db's records (package store)
// both use it; neither owns it.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrTruncated is the error of a Reader that ran past its input, or met
// an integer that is not a uvarint. Callers wrap it in their own sentinel
// (a bad command, a bad record, a bad snapshot).
var ErrTruncated = errors.New("truncated or malformed field")

// AppendBytes appends p with its length in front.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// UvarintLen is the length of v's shortest uvarint encoding.
func UvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// Reader decodes uvarint-framed fields from B, remembering the first
// error: a decoder reads every field and checks Err once.
type Reader struct {
	B   []byte
	Err error
}

// Uvarint reads one integer.
func (r *Reader) Uvarint() uint64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.Err = fmt.Errorf("%w: integer", ErrTruncated)
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Bytes reads one length-prefixed byte string; it aliases B.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.Err != nil {
		return nil
	}
	if n > uint64(len(r.B)) {
		r.Err = fmt.Errorf("%w: a field of %d bytes past the end", ErrTruncated, n)
		return nil
	}
	p := r.B[:n]
	r.B = r.B[n:]
	return p
}
