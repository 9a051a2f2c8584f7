package actors

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
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

// initialCluster writes peers as --cluster lists them, in id order: what a
// data dir records of the cluster it was created in.
func initialCluster(peers map[uint64]string) string {
	urls := make([]string, 0, len(peers))
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		urls = append(urls, peers[id])
	}
	return strings.Join(urls, ",")
}
