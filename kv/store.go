package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
)

// ErrBadSnapshot is returned when snapshot data does not decode.
var ErrBadSnapshot = errors.New("malformed snapshot data")

// snapshotMagic starts every snapshot this package writes, so a snapshot of
// another format (raftexample's JSON, say) is refused instead of misread.
// Version 2 added the removed members, version 3 the members' client URLs;
// earlier versions still restore, without them.
const (
	snapshotMagic   = "RKV3"
	snapshotMagicV2 = "RKV2"
	snapshotMagicV1 = "RKV1"
)

// store is the replicated state: the key-value map and the member lists.
// The member lists are part of the state because a snapshot may compact
// away the conf change entries that carried them: the members' peer URLs,
// and which ids were removed, so that a removed member that comes back is
// told so (and stops) instead of being ignored forever.
type store struct {
	data    *cowMap
	members map[uint64]string // id → peer URL
	removed map[uint64]bool
	// clients holds the client URLs each member published (opAttrs) once
	// it started, so that any member can tell clients where the others are.
	clients map[uint64][]string
}

func newStore() *store {
	return &store{data: newCowMap(), members: make(map[uint64]string), removed: make(map[uint64]bool),
		clients: make(map[uint64][]string)}
}

// apply executes one command. Values are copied: entry data belongs to raft's
// log, which may be compacted or reused.
func (s *store) apply(c command) {
	switch c.op {
	case opPut:
		s.data.set(c.key, append([]byte(nil), c.value...))
	case opDelete:
		s.data.delete(c.key)
	case opAttrs:
		id, urls, err := decodeAttrs(c)
		// A member removed while its publication was in flight has no
		// record to update; decodeAttrs errors were refused at decode.
		if _, ok := s.members[id]; ok && err == nil {
			s.clients[id] = urls
		}
	}
}

func (s *store) get(key string) ([]byte, bool) { return s.data.get(key) }

// freeze returns the state as it is now, for encoding on another actor
// while this store goes on applying (see cowMap.freeze).
func (s *store) freeze() *frozenState {
	return &frozenState{data: s.data.freeze(), members: maps.Clone(s.members), removed: maps.Clone(s.removed),
		clients: maps.Clone(s.clients)}
}

// frozenState is the state as of a freeze, safe to read anywhere. Its
// client URL slices are shared with the store, which replaces them whole
// and never writes into one.
type frozenState struct {
	data    *frozenMap
	members map[uint64]string
	removed map[uint64]bool
	clients map[uint64][]string
}

// marshal encodes the whole state:
//
//	magic | n members | (id | url length | url)… | n removed | id… |
//	n published | (id | n urls | (url length | url)…)… | n keys | (key length | key | value length | value)…
//
// with every integer a uvarint. Version 2 lacks the client URLs, version 1
// the removed ids too.
func (s *frozenState) marshal() []byte {
	size := len(snapshotMagic) + 4*binary.MaxVarintLen64 + len(s.removed)*binary.MaxVarintLen64
	for _, urls := range s.clients {
		size += 2 * binary.MaxVarintLen64
		for _, u := range urls {
			size += binary.MaxVarintLen64 + len(u)
		}
	}
	for _, u := range s.members {
		size += 2*binary.MaxVarintLen64 + len(u)
	}
	for k, v := range s.data.all() {
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = binary.AppendUvarint(b, uint64(len(s.members)))
	for id, u := range s.members {
		b = binary.AppendUvarint(b, id)
		b = appendBytes(b, []byte(u))
	}
	b = binary.AppendUvarint(b, uint64(len(s.removed)))
	for id := range s.removed {
		b = binary.AppendUvarint(b, id)
	}
	b = binary.AppendUvarint(b, uint64(len(s.clients)))
	for id, urls := range s.clients {
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, uint64(len(urls)))
		for _, u := range urls {
			b = appendBytes(b, []byte(u))
		}
	}
	b = binary.AppendUvarint(b, uint64(s.data.len()))
	for k, v := range s.data.all() {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, v)
	}
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// unmarshalStore decodes what marshal wrote. Empty data is an empty store:
// a snapshot taken before anything was written.
func unmarshalStore(b []byte) (*store, error) {
	s := newStore()
	if len(b) == 0 {
		return s, nil
	}
	var magic string
	if len(b) >= len(snapshotMagic) {
		magic = string(b[:len(snapshotMagic)])
	}
	if magic != snapshotMagic && magic != snapshotMagicV2 && magic != snapshotMagicV1 {
		return nil, fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	r := reader{b: b[len(snapshotMagic):]}
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.uvarint()
		s.members[id] = string(r.bytes())
	}
	if magic != snapshotMagicV1 {
		n = r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			s.removed[r.uvarint()] = true
		}
	}
	if magic == snapshotMagic {
		n = r.uvarint()
		for i := uint64(0); i < n && r.err == nil; i++ {
			id := r.uvarint()
			k := r.uvarint()
			if k > uint64(len(r.b)) { // each URL takes a byte at least
				r.err = fmt.Errorf("%w: %d client URLs past the end", ErrBadSnapshot, k)
				break
			}
			urls := make([]string, 0, k)
			for j := uint64(0); j < k && r.err == nil; j++ {
				urls = append(urls, string(r.bytes()))
			}
			s.clients[id] = urls
		}
	}
	n = r.uvarint()
	if r.err == nil && n <= uint64(len(r.b)) { // each key takes a byte at least
		s.data.reserve(int(n))
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := string(r.bytes())
		v := r.bytes()
		s.data.set(k, append([]byte(nil), v...))
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(r.b))
	}
	return s, nil
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

func (s *store) membersCopy() map[uint64]string { return maps.Clone(s.members) }

// memberList is the member list as clients see it, sorted by id: learners
// are those of cs, and this member's own client URLs (self, urls) stand in
// for what it has not published (the raftexample format cannot).
func (s *store) memberList(cs *raftpb.ConfState, self uint64, urls []string) []messages.Member {
	learners := make(map[uint64]bool)
	for _, id := range cs.GetLearners() {
		learners[id] = true
	}
	out := make([]messages.Member, 0, len(s.members))
	for _, id := range slices.Sorted(maps.Keys(s.members)) {
		m := messages.Member{ID: id, PeerURL: s.members[id], ClientURLs: s.clients[id], Learner: learners[id]}
		if id == self && len(m.ClientURLs) == 0 {
			m.ClientURLs = urls
		}
		if m.ClientURLs == nil {
			m.ClientURLs = []string{}
		}
		out = append(out, m)
	}
	return out
}

// removedIDs lists the members removed from the cluster, in no order.
func (s *store) removedIDs() []uint64 { return slices.Collect(maps.Keys(s.removed)) }
