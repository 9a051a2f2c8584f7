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

// appendPutKey appends the key of the seq-th new key of client to dst:
// <prefix><run>-<client>-<seq>. The client number has no leading zeros, so
// the pair can be read back from the key (the watchers do) and two pairs
// never share one; seq is zero-padded to reach the key size, the same
// width for every seq of a client, and never cut: uniqueness comes first.
func (n keyNamer) appendPutKey(dst []byte, client int, seq uint64) []byte {
	start := len(dst)
	dst = append(strconv.AppendInt(append(append(dst, n.prefix...), '-'), int64(client), 10), '-')
	return appendPadded(dst, seq, n.size-(len(dst)-start))
}

// appendSpaceKey appends the key of index i of the key space that get,
// mixed, cas and range preload: <prefix><run>-k<i>. The "k" keeps these
// keys apart from those of appendPutKey.
func (n keyNamer) appendSpaceKey(dst []byte, i uint64) []byte {
	start := len(dst)
	dst = append(append(dst, n.prefix...), "-k"...)
	return appendPadded(dst, i, n.size-(len(dst)-start))
}

func (n keyNamer) spacePrefix() string { return n.prefix + "-k" }
func (n keyNamer) putPrefix() string   { return n.prefix + "-" }

func appendPadded(dst []byte, v uint64, width int) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], v, 10)
	for i := len(d); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}
