package store

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// The member lists are part of the replicated state because log
// compaction drops the conf change entries that carried them: the
// members' peer and client URLs, and which ids were removed, so that a
// removed member that comes back is told so (and stops) instead of being
// ignored forever. They are small, so the store keeps them in memory too;
// every write goes to both.

// memberRecord is a member as the members bucket keeps it.
type memberRecord struct {
	peerURL    string
	clientURLs []string
}

func (m memberRecord) encode() []byte {
	b := wire.AppendBytes(nil, []byte(m.peerURL))
	b = binary.AppendUvarint(b, uint64(len(m.clientURLs)))
	for _, u := range m.clientURLs {
		b = wire.AppendBytes(b, []byte(u))
	}
	return b
}

func decodeMember(b []byte) (memberRecord, error) {
	r := wire.Reader{B: b}
	m := memberRecord{peerURL: string(r.Bytes())}
	n := r.Uvarint()
	if r.Err == nil && n > uint64(len(r.B)) {
		return m, fmt.Errorf("%w: member record", ErrBadDB)
	}
	for i := uint64(0); i < n && r.Err == nil; i++ {
		m.clientURLs = append(m.clientURLs, string(r.Bytes()))
	}
	if r.Err != nil || len(r.B) != 0 {
		return m, fmt.Errorf("%w: member record", ErrBadDB)
	}
	return m, nil
}

func (s *Store) loadMembers() error {
	ms, removed, err := readMembers(s.be.Tx())
	if err != nil {
		return err
	}
	s.members, s.removed, s.clients = make(map[uint64]string), removed, make(map[uint64][]string)
	for id, m := range ms {
		s.members[id] = m.peerURL
		if len(m.clientURLs) > 0 {
			s.clients[id] = m.clientURLs
		}
	}
	return nil
}

// readMembers reads the member lists of a transaction.
func readMembers(tx *bolt.Tx) (map[uint64]memberRecord, map[uint64]bool, error) {
	members, removed := make(map[uint64]memberRecord), make(map[uint64]bool)
	err := tx.Bucket(bucketMembers).ForEach(func(k, v []byte) error {
		m, err := decodeMember(v)
		if err != nil {
			return err
		}
		members[u64(k)] = m
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	err = tx.Bucket(bucketRemoved).ForEach(func(k, _ []byte) error {
		removed[u64(k)] = true
		return nil
	})
	return members, removed, err
}

// setMember writes (or, with del, removes) a member's record, keeping the
// removed ids in step: a member added is no longer removed, one removed is.
func (s *Store) setMember(id uint64, m memberRecord, del bool) error {
	tx := s.be.Tx()
	members, removed := tx.Bucket(bucketMembers), tx.Bucket(bucketRemoved)
	var err error
	if del {
		if err = members.Delete(idKey(id)); err == nil {
			err = removed.Put(idKey(id), nil)
		}
	} else if err = members.Put(idKey(id), m.encode()); err == nil {
		err = removed.Delete(idKey(id))
	}
	if err != nil {
		return fmt.Errorf("write member %d: %w", id, err)
	}
	return nil
}

// AddMember records a member added (or promoted) at peerURL.
func (s *Store) AddMember(id uint64, peerURL string) error {
	s.members[id] = peerURL
	// New proposals never reuse a removed id (ErrIDRemoved), but a log
	// written by raftexample, or by a build before that rule, may: the
	// apply follows the log.
	delete(s.removed, id)
	return s.setMember(id, memberRecord{peerURL: peerURL, clientURLs: s.clients[id]}, false)
}

// RemoveMember records a member's removal.
func (s *Store) RemoveMember(id uint64) error {
	delete(s.members, id)
	delete(s.clients, id)
	s.removed[id] = true
	return s.setMember(id, memberRecord{}, true)
}

// SetClients records the client URLs member id published; a member the
// state does not hold (removed while its publication was in flight) has
// no record to update, and nothing changes.
func (s *Store) SetClients(id uint64, urls []string) error {
	if _, ok := s.members[id]; !ok {
		return nil
	}
	s.clients[id] = urls
	return s.setMember(id, memberRecord{peerURL: s.members[id], clientURLs: urls}, false)
}

// Members returns the member list (id → peer URL), a copy.
func (s *Store) Members() map[uint64]string { return maps.Clone(s.members) }

// Removed lists the members removed from the cluster, in no order.
func (s *Store) Removed() []uint64 { return slices.Collect(maps.Keys(s.removed)) }

// IsRemoved says whether id was removed from the cluster.
func (s *Store) IsRemoved(id uint64) bool { return s.removed[id] }

// Member returns member id's peer URL; ok is false if the state does not
// hold it.
func (s *Store) Member(id uint64) (peerURL string, ok bool) {
	peerURL, ok = s.members[id]
	return peerURL, ok
}

// Clients returns the client URLs member id published (not a copy: do not
// modify it).
func (s *Store) Clients(id uint64) []string { return s.clients[id] }

// MemberList is the member list as clients see it (membership.List):
// learners are those of cs, and this member's own client URLs (self, urls)
// stand in for what it has not published.
func (s *Store) MemberList(cs *raftpb.ConfState, self uint64, urls []string) []messages.Member {
	return membership.List(s.members, s.clients, cs.GetLearners(), self, urls)
}

// CheckAdd, CheckPromote and CheckRemove apply membership's refusals to
// the member lists the state holds (membership.CheckAdd and the others).
func (s *Store) CheckAdd(id uint64, peerURL string, sharesPrefix membership.IDConflict) error {
	return membership.CheckAdd(s.members, s.removed, id, peerURL, sharesPrefix)
}

// CheckUpdate: see CheckAdd.
func (s *Store) CheckUpdate(id uint64, peerURL string) error {
	return membership.CheckUpdate(s.members, id, peerURL)
}

// CheckPromote: see CheckAdd.
func (s *Store) CheckPromote(learners []uint64, id uint64) error {
	return membership.CheckPromote(s.members, learners, id)
}

// CheckRemove: see CheckAdd.
func (s *Store) CheckRemove(id uint64) error { return membership.CheckRemove(s.members, id) }
