package membership

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// RaftexampleClusterID is the cluster id of the raftexample format:
// raftexample's own, fixed (it sends "1000" in X-Etcd-Cluster-ID).
const RaftexampleClusterID = 0x1000

// ClusterID derives the id of a new native cluster from its initial
// membership (member ids and peer URLs, as ParseCluster writes them) and an
// optional token, as etcd derives its cluster id from --initial-cluster and
// --initial-cluster-token. Two clusters started with different member
// lists, or with different tokens, get different ids, so their members
// refuse each other's messages (412) and a data dir of one is refused by a
// member of the other. The id is never zero, which raft and the WAL read as
// "none".
func ClusterID(peers map[uint64]string, token string) uint64 {
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

// FormatClusterID writes a cluster id as --cluster-id takes it and as
// refusals quote it: lowercase hex, without 0x.
func FormatClusterID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseClusterID reads --cluster-id: a non-zero hex number.
func ParseClusterID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("--cluster-id %q: want a non-zero hex number", s)
	}
	return id, nil
}

// Origin is how a member's data dir came to be, as its WAL records it
// (persistence.Metadata), or as the flags describe the member.
type Origin struct {
	Member    uint64
	ClusterID uint64
	// Cluster is the --cluster it was created with, in FormatCluster's
	// form; empty for a member that joined, and in data dirs of earlier
	// versions.
	Cluster string
	Token   string // --initial-cluster-token
	Joined  bool   // it joined a running cluster (--join)
}

// MismatchError is a data dir that holds another member than the flags
// name, or a member of another cluster than they describe. Its text is the
// one line an operator reads: what the data dir holds, what the flags say,
// and what to do.
type MismatchError struct {
	DataDir string
	// Stored is what the data dir records, Want what the flags describe
	// (Cluster and Token as given, ClusterID as derived or given).
	Stored, Want Origin
}

func (e *MismatchError) Error() string {
	s, w := e.Stored, e.Want
	if s.Member != w.Member {
		return fmt.Sprintf("data dir %s holds member %d of cluster %s, not member %d: give each member its own --data-dir",
			e.DataDir, s.Member, FormatClusterID(s.ClusterID), w.Member)
	}
	return fmt.Sprintf("data dir %s holds member %d of another cluster (%s), but the flags describe cluster %s (--cluster %s%s): %s",
		e.DataDir, s.Member, e.describeStored(), FormatClusterID(w.ClusterID), w.Cluster, tokenFlag(w.Token), e.advice())
}

// describeStored says what the data dir records of its cluster.
func (e *MismatchError) describeStored() string {
	s := e.Stored
	switch {
	case s.Joined:
		return fmt.Sprintf("cluster %s, which it joined", FormatClusterID(s.ClusterID))
	case s.Cluster != "":
		return fmt.Sprintf("cluster %s, created with --cluster %s%s", FormatClusterID(s.ClusterID), s.Cluster, tokenFlag(s.Token))
	}
	return fmt.Sprintf("cluster %s, created by an earlier version", FormatClusterID(s.ClusterID))
}

func (e *MismatchError) advice() string {
	s := e.Stored
	switch {
	case s.Joined:
		return "restart it with --join, or move the data dir away to start a new member"
	case s.Cluster != "" && e.sameMembers():
		// The flags are the ones it was created with, but the id is not
		// the one they derive: it was given (--cluster-id), or derived by
		// an earlier version from peer URLs as written (a port with
		// leading zeros), which ParseCluster now writes in one form.
		return fmt.Sprintf("it was created with these members and token, under cluster %s: restart it with --cluster-id %s, or move the data dir away (or pick another --data-dir) to start a new member",
			FormatClusterID(s.ClusterID), FormatClusterID(s.ClusterID))
	case s.Cluster != "":
		return "restart it with the flags it was created with, or move the data dir away (or pick another --data-dir) to start a new member"
	}
	return fmt.Sprintf("to keep using it, start it with --cluster-id %s; or move the data dir away to start a new member", FormatClusterID(s.ClusterID))
}

// sameMembers says whether the data dir was created with the members and
// token the flags give, URLs compared in one form.
func (e *MismatchError) sameMembers() bool {
	if e.Stored.Token != e.Want.Token {
		return false
	}
	stored, err1 := ParseCluster(e.Stored.Cluster, nil)
	want, err2 := ParseCluster(e.Want.Cluster, nil)
	return err1 == nil && err2 == nil && maps.Equal(stored, want)
}

func tokenFlag(token string) string {
	if token == "" {
		return ""
	}
	return " --initial-cluster-token " + token
}
