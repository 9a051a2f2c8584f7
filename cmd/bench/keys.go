package main

import "strconv"

// keyNamer names the keys of one run. Every key starts with the prefix and
// the run id, so that runs neither overwrite each other's keys nor, in the
// put command, an earlier key of their own.
type keyNamer struct {
	prefix string // --key-prefix followed by the run id
	size   int    // keys are padded to at least this many bytes
}

func newKeyNamer(prefix, runID string, size int) keyNamer {
	return keyNamer{prefix: prefix + runID, size: size}
}

// appendPutKey appends the key of the seq-th PUT of client to dst:
// <prefix><run>-<client>-<seq>. The client number has no leading zeros and
// no dash, so the pair (client, seq) can be read back from the key and two
// pairs never share one. seq is padded with zeros to reach the key size,
// with the same width for every seq of a client, which keeps keys distinct;
// a key longer than the size is not cut, since uniqueness matters more.
func (n keyNamer) appendPutKey(dst []byte, client int, seq uint64) []byte {
	dst = append(dst, n.prefix...)
	dst = append(dst, '-')
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(client), 10)
	dst = append(dst, '-')
	fixed := len(n.prefix) + 1 + (len(dst) - start)
	return appendPadded(dst, seq, n.size-fixed)
}

// appendSpaceKey appends the key of index i of the key space that get and
// mixed preload and then read and overwrite: <prefix><run>-k<i>. The "k"
// keeps these keys apart from those of appendPutKey.
func (n keyNamer) appendSpaceKey(dst []byte, i uint64) []byte {
	dst = append(dst, n.prefix...)
	dst = append(dst, "-k"...)
	return appendPadded(dst, i, n.size-len(n.prefix)-2)
}

// spacePrefix is what every key of the key space starts with, and no other
// key of the run.
func (n keyNamer) spacePrefix() string { return n.prefix + "-k" }

// putPrefix is what every key of appendPutKey starts with; the space keys
// share it.
func (n keyNamer) putPrefix() string { return n.prefix + "-" }

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(dst []byte, v uint64, width int) []byte {
	for d := decimalDigits(v); d < width; d++ {
		dst = append(dst, '0')
	}
	return strconv.AppendUint(dst, v, 10)
}

func decimalDigits(v uint64) int {
	d := 1
	for v >= 10 {
		v /= 10
		d++
	}
	return d
}
