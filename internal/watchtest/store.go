// Package watchtest holds what tests of the watch hub and of the two client
// doors' watch endpoints share: a Store that plays the kv actor and its db's
// history, and what gives its events their previous records (prev.go).
// Only tests import it.
package watchtest

import (
	"cmp"
	"slices"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/messages"
)

// Op is one change of a revision: a put of Value, or a delete.
type Op struct {
	Key    string
	Value  string
	Delete bool
}

// Put and Del are Ops.
func Put(key, value string) Op { return Op{Key: key, Value: value} }
func Del(key string) Op        { return Op{Key: key, Delete: true} }

// Store plays the kv actor for a hub: it makes revisions of Ops, tells the
// hub about them and about its commits as the kv actor does, and serves
// their history as the db would (watch.History): the committed part only.
type Store struct {
	mu        sync.Mutex
	root      *actor.RootContext
	hub       *actor.PID
	rev       uint64
	keys      map[string]messages.KV
	events    []messages.Event // every event made, committed or not
	committed uint64
	compacted uint64
	held      []any // messages for the hub, while Hold is on
	holding   bool
	// afterRead, if set, runs after each ReadEvents, outside the lock: a
	// test makes the db move on between a stream's read and what it does
	// next.
	afterRead func(through uint64)
}

// NewStore returns an empty store at revision 0 that tells hub. A nil hub
// is told nothing until SetHub names one: a hub started at the store's
// revision then.
func NewStore(root *actor.RootContext, hub *actor.PID) *Store {
	return &Store{root: root, hub: hub, keys: make(map[string]messages.KV)}
}

// SetHub names the hub to tell.
func (s *Store) SetHub(hub *actor.PID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hub = hub
}

// AfterRead sets a function run after each ReadEvents.
func (s *Store) AfterRead(fn func(through uint64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterRead = fn
}

// Revision is the store's revision.
func (s *Store) Revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// Apply makes one revision of each group of ops, as one apply, and sends the
// hub their events in one WatchEvents. It returns the last revision.
func (s *Store) Apply(revs ...[]Op) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var evs []messages.Event
	for _, ops := range revs {
		s.rev++
		for _, op := range ops {
			evs = append(evs, s.change(op))
		}
	}
	s.events = append(s.events, evs...)
	s.send(messages.WatchEvents{Events: evs, Revision: s.rev})
	return s.rev
}

// Put applies one revision with one put.
func (s *Store) Put(key, value string) uint64 { return s.Apply([]Op{Put(key, value)}) }

// Delete applies one revision with one delete.
func (s *Store) Delete(key string) uint64 { return s.Apply([]Op{Del(key)}) }

func (s *Store) change(op Op) messages.Event {
	if op.Delete {
		delete(s.keys, op.Key)
		return messages.Event{Type: messages.EventDelete, KV: messages.KV{Key: op.Key, ModRevision: s.rev}}
	}
	kv, ok := s.keys[op.Key]
	if !ok {
		kv = messages.KV{Key: op.Key, CreateRevision: s.rev}
	}
	kv.Value, kv.ModRevision = []byte(op.Value), s.rev
	kv.Version++
	s.keys[op.Key] = kv
	return messages.Event{Type: messages.EventPut, KV: kv}
}

// Commit makes everything applied durable, and tells the hub.
func (s *Store) Commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = s.rev
	s.send(messages.WatchCommitted{Revision: s.rev, Compacted: s.compacted})
}

// Compact drops the history through rev.
func (s *Store) Compact(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = max(s.compacted, rev)
}

// Reset replaces the state, as a snapshot from the leader does: the store
// jumps to revision rev, committed, its history starting after compacted;
// the hub is told.
func (s *Store) Reset(rev, compacted uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rev, s.committed, s.compacted = rev, rev, compacted
	s.events = nil
	s.send(messages.WatchReset{Revision: rev, Compacted: compacted})
}

// Hold keeps the messages for the hub from now on, until Release sends
// them: the hub then lags the db, as it does when the kv actor commits
// before it sends.
func (s *Store) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = true
}

// Release sends what Hold kept, in order.
func (s *Store) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	for _, m := range s.held {
		s.root.Send(s.hub, m)
	}
	s.held = nil
}

func (s *Store) send(m any) {
	switch {
	case s.holding:
		s.held = append(s.held, m)
	case s.hub != nil:
		s.root.Send(s.hub, m)
	}
}

// Events returns the events of revisions from through to (inclusive) that
// filter takes, made since the last Reset.
func (s *Store) Events(from, to uint64, take func(key string) bool) []messages.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []messages.Event
	for _, e := range s.events {
		if r := e.Revision(); r >= from && r <= to && take(e.KV.Key) {
			out = append(out, e)
		}
	}
	return out
}

// ReadEvents implements watch.History over the committed events.
func (s *Store) ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (uint64, error) {
	through, err := s.read(from, maxEvents, fn)
	s.mu.Lock()
	after := s.afterRead
	s.mu.Unlock()
	if err == nil && after != nil {
		after(through)
	}
	return through, err
}

func (s *Store) read(from uint64, maxEvents int, fn func(messages.Event)) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from <= s.compacted {
		return 0, &messages.CompactedError{Revision: from, Compacted: s.compacted}
	}
	through, n := from-1, 0
	i, _ := slices.BinarySearchFunc(s.events, from, func(e messages.Event, rev uint64) int {
		return cmp.Compare(e.Revision(), rev)
	})
	for ; i < len(s.events); i++ {
		e := s.events[i]
		rev := e.Revision()
		if rev > s.committed {
			break
		}
		if rev != through && n >= maxEvents {
			return through, nil
		}
		e.KV.Value = slices.Clone(e.KV.Value)
		fn(e)
		n++
		through = rev
	}
	return max(through, s.committed), nil
}
