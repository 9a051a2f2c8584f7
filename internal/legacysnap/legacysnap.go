// Package legacysnap writes snapshots of the state machine's previous
// layout, the whole state inline (kv/legacy.go reads them), so that tests
// of several packages can make the data dirs a migration starts from. Only
// tests import it.
package legacysnap

import (
	"encoding/binary"
	"maps"
	"slices"
)

// Encode writes members (id → peer URL), the removed ids and the key-value
// data in the previous layout's version 3, without client URLs.
func Encode(members map[uint64]string, removed []uint64, data map[string]string) []byte {
	b := []byte("RKV3")
	b = binary.AppendUvarint(b, uint64(len(members)))
	for _, id := range slices.Sorted(maps.Keys(members)) {
		b = binary.AppendUvarint(b, id)
		b = appendBytes(b, []byte(members[id]))
	}
	b = binary.AppendUvarint(b, uint64(len(removed)))
	for _, id := range removed {
		b = binary.AppendUvarint(b, id)
	}
	b = binary.AppendUvarint(b, 0) // no client URLs
	b = binary.AppendUvarint(b, uint64(len(data)))
	for _, k := range slices.Sorted(maps.Keys(data)) {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, []byte(data[k]))
	}
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}
