package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
)

// ErrBadSnapshot is returned when inline snapshot data does not decode.
var ErrBadSnapshot = errors.New("malformed snapshot data")

// store is the replicated state as the kv actor sees it: the key-value data
// in the backend's db, and the member lists, small enough to keep in memory
// too (every write to them goes to both). The member lists are part of the
// state because log compaction drops the conf change entries that carried
// them: the members' peer and client URLs, and which ids were removed, so
// that a removed member that comes back is told so (and stops) instead of
// being ignored forever.
type store struct {
	be      *backend
	members map[uint64]string // id → peer URL
	removed map[uint64]bool
	// clients holds the client URLs each member published (opAttrs) once
	// it started, so that any member can tell clients where the others are.
	clients map[uint64][]string
	// events are the changes applied since the kv actor last handed them to
	// the watch hub.
	events []messages.Event
}

// newStore reads the member lists of be.
func newStore(be *backend) (*store, error) {
	s := &store{be: be}
	return s, s.loadMembers()
}

func (s *store) loadMembers() error {
	ms, removed, err := readMembers(s.be.tx)
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

// apply executes one put, delete or publication of the entry at index rev,
// and says what a client of it hears. A put the quota refuses answers
// ErrNoSpace and changes nothing; any other error is the db's and fatal.
func (s *store) apply(c command, rev, quota uint64) (messages.Result, error) {
	switch c.op {
	case opPut:
		ch, err := s.be.put(c.key, c.value, rev, quota)
		if err != nil {
			return messages.Result{}, err
		}
		s.events = append(s.events, ch.event())
	case opDelete:
		n, err := s.deleteRange(c.key, "", rev)
		return messages.Result{Results: []messages.OpResult{{Deleted: n}}}, err
	case opAttrs:
		id, urls, err := decodeAttrs(c)
		// A member removed while its publication was in flight has no
		// record to update; decodeAttrs errors were refused at decode.
		if _, ok := s.members[id]; ok && err == nil {
			return messages.Result{}, s.setClients(id, urls)
		}
	}
	return messages.Result{}, nil
}

// get reads a key as applied.
func (s *store) get(key string) (messages.KV, bool, error) {
	r, ok, err := s.be.get(key)
	return r.kv(key), ok, err
}

// revision is the store's revision: the index of the last entry that
// changed a key.
func (s *store) revision() uint64 { return s.be.meta.revision }

// takeEvents returns the changes applied since it was last called.
func (s *store) takeEvents() []messages.Event {
	ev := s.events
	s.events = nil
	return ev
}

// addMember records a member added (or promoted) at peerURL.
func (s *store) addMember(id uint64, peerURL string) error {
	s.members[id] = peerURL
	// New proposals never reuse a removed id (ErrIDRemoved), but a log
	// written by raftexample, or by a build before that rule, may: the
	// apply follows the log.
	delete(s.removed, id)
	return s.be.setMember(id, memberRecord{peerURL: peerURL, clientURLs: s.clients[id]}, false)
}

// removeMember records a member's removal.
func (s *store) removeMember(id uint64) error {
	delete(s.members, id)
	delete(s.clients, id)
	s.removed[id] = true
	return s.be.setMember(id, memberRecord{}, true)
}

func (s *store) setClients(id uint64, urls []string) error {
	s.clients[id] = urls
	return s.be.setMember(id, memberRecord{peerURL: s.members[id], clientURLs: urls}, false)
}

// keys is how many keys the state holds.
func (s *store) keys() int { return int(s.be.meta.keys) }

func (s *store) membersCopy() map[uint64]string { return maps.Clone(s.members) }

// removedIDs lists the members removed from the cluster, in no order.
func (s *store) removedIDs() []uint64 { return slices.Collect(maps.Keys(s.removed)) }

// memberList is the member list as clients see it (membership.List):
// learners are those of cs, and this member's own client URLs (self, urls)
// stand in for what it has not published.
func (s *store) memberList(cs *raftpb.ConfState, self uint64, urls []string) []messages.Member {
	return membership.List(s.members, s.clients, cs.GetLearners(), self, urls)
}

// reset empties the whole state, for a restore from inline snapshot data
// at revision rev: the history starts there.
func (s *store) reset(rev uint64) error {
	if err := s.be.reset(); err != nil {
		return err
	}
	s.be.resetHistory(rev)
	s.members, s.removed, s.clients = make(map[uint64]string), make(map[uint64]bool), make(map[uint64][]string)
	s.events = nil
	return nil
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// reader decodes uvarint-framed fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: truncated integer", ErrBadSnapshot)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%w: field of %d bytes past the end", ErrBadSnapshot, n)
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}
