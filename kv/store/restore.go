package store

import (
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
)

// Rebase makes the state a starting point for a new cluster whose voters
// are members (id → peer URL), for a restore from a backup (etcdutl's
// snapshot restore does the same to its backend): the keys, revisions,
// history and leases stay; what belongs to the old cluster goes.
//
//   - The member lists become members alone, without client URLs (each
//     member publishes its own when it starts) and with no removed ids: an
//     id the old cluster removed may be a member of the new one.
//   - The configuration becomes members as voters, so that raft restarts
//     from the restored snapshot with them.
//   - The dedup records go: they describe proposals to the old cluster,
//     which no new member can propose again (dedup.go).
//
// The applied index stays the backup's, so that the new cluster's entries,
// and with them its revisions, continue upwards from it; term is the term
// the restored snapshot records. It reaches the disk at Commit.
func (s *Store) Rebase(members map[uint64]string, term uint64) error {
	tx := s.be.Tx()
	for _, name := range [][]byte{bucketMembers, bucketRemoved} {
		if err := emptyBucket(tx, name); err != nil {
			return err
		}
	}
	if err := resetDedup(tx); err != nil {
		return err
	}
	s.members, s.removed, s.clients = make(map[uint64]string), make(map[uint64]bool), make(map[uint64][]string)
	ids := slices.Sorted(maps.Keys(members))
	for _, id := range ids {
		if err := s.AddMember(id, members[id]); err != nil {
			return err
		}
	}
	s.SetApplied(s.meta.applied, term, &raftpb.ConfState{Voters: ids})
	return nil
}

// emptyBucket deletes every record of the bucket name by making it anew.
func emptyBucket(tx *bolt.Tx, name []byte) error {
	if err := tx.DeleteBucket(name); err != nil {
		return fmt.Errorf("empty bucket %s: %w", name, err)
	}
	if _, err := tx.CreateBucket(name); err != nil {
		return fmt.Errorf("make bucket %s: %w", name, err)
	}
	return nil
}
