package actors

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ClusterIDOf derives the id of a new native cluster from its initial
// membership (member ids and peer URLs) and an optional token, as etcd
// derives its cluster id from --initial-cluster and --initial-cluster-token.
// Two clusters started with different member lists, or with different
// tokens, get different ids, so their members refuse each other's messages
// (412) and a data dir of one is refused by a member of the other. The id
// is never zero, which raft and the WAL read as "none".
func ClusterIDOf(peers map[uint64]string, token string) uint64 {
	h := sha256.New()
	var b []byte
	b = append(b, "raftkv cluster\x00"...)
	b = binary.AppendUvarint(b, uint64(len(token)))
	b = append(b, token...)
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, uint64(len(peers[id])))
		b = append(b, peers[id]...)
	}
	h.Write(b)
	id := binary.BigEndian.Uint64(h.Sum(nil)[:8])
	if id == 0 {
		id = 1
	}
	return id
}

// ClusterFlag writes peers as --cluster takes them: the URLs in id order
// when the ids are 1..N, id=URL entries otherwise. A data dir records it of
// the cluster it was created in, and refusals quote it.
func ClusterFlag(peers map[uint64]string) string {
	ids := slices.Sorted(maps.Keys(peers))
	named := len(ids) > 0 && ids[len(ids)-1] != uint64(len(ids))
	entries := make([]string, 0, len(ids))
	for _, id := range ids {
		if named {
			entries = append(entries, strconv.FormatUint(id, 10)+"="+peers[id])
		} else {
			entries = append(entries, peers[id])
		}
	}
	return strings.Join(entries, ",")
}
