package watch

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/raftkv/node/messages"
)

// maxSharedEvents bounds the events SharedHistory keeps: about 16 chunks of
// catch-up reads (catchUpEvents each... 64 of them), a few MiB of small
// values; the chunk read longest ago goes first.
const maxSharedEvents = 16_384

// SharedHistory is the member's History with the chunks it read last kept
// in memory, so that watchers catching up from about the same revision
// (many watchers of one prefix that all fell behind one burst of writes,
// or all resumed after one restart) read and decode the db once between
// them, and share each revision's events, and so their encodings, as the
// hub's live watchers do. It is safe for concurrent use. The node makes
// one, passes it to the hub (which tells it of compactions and resets) and
// to the client APIs' streams as their History.
type SharedHistory struct {
	h History

	mu     sync.Mutex
	chunks []*chunk // by from
	events int
	tick   uint64

	// compacted is the newest revision the history no longer holds, as
	// the hub last heard: a chunk never answers for it or below, so that
	// a watch from a compacted revision is refused as the db would.
	compacted atomic.Uint64
}

// chunk is one read of the history: every revision in [from, through],
// those with events as groups.
type chunk struct {
	from, through uint64
	groups        []*group
	events        int
	used          uint64
}

// NewSharedHistory returns h with a cache of the chunks read last.
func NewSharedHistory(h History) *SharedHistory { return &SharedHistory{h: h} }

// ReadEvents reads the history itself, as h does: History for callers that
// take events one by one.
func (s *SharedHistory) ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (uint64, error) {
	return s.h.ReadEvents(from, maxEvents, fn)
}

// compactedTo notes a compaction: revisions at or below rev are no longer
// served from memory either.
func (s *SharedHistory) compactedTo(rev uint64) {
	for {
		old := s.compacted.Load()
		if rev <= old || s.compacted.CompareAndSwap(old, rev) {
			return
		}
	}
}

// reset forgets every chunk: the state was replaced whole.
func (s *SharedHistory) reset(compacted uint64) {
	s.mu.Lock()
	s.chunks, s.events = nil, 0
	s.mu.Unlock()
	s.compacted.Store(compacted)
}

// groups returns the revisions from from on, as far as one chunk reaches
// (through), from memory or from the db.
func (s *SharedHistory) groups(from uint64) ([]*group, uint64, error) {
	if from <= s.compacted.Load() {
		// Let the db answer: it knows how far it is compacted.
		return s.read(from)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	for _, c := range s.chunks {
		if c.from <= from && from <= c.through {
			c.used = s.tick
			i := sort.Search(len(c.groups), func(i int) bool { return c.groups[i].rev >= from })
			return c.groups[i:], c.through, nil
		}
	}
	// One read at a time: the watchers that fell behind together ask for
	// the same chunk, and all but the first find it here.
	gs, through, err := s.read(from)
	if err != nil {
		return nil, 0, err
	}
	s.add(&chunk{from: from, through: through, groups: gs, used: s.tick})
	return gs, through, nil
}

// read reads one chunk from the db.
func (s *SharedHistory) read(from uint64) ([]*group, uint64, error) {
	var evs []messages.Event
	through, err := s.h.ReadEvents(from, catchUpEvents, func(e messages.Event) { evs = append(evs, e) })
	if err != nil {
		return nil, 0, err
	}
	return groupByRevision(evs), through, nil
}

// add keeps c, dropping the chunks used longest ago past maxSharedEvents.
// The caller holds mu.
func (s *SharedHistory) add(c *chunk) {
	for _, g := range c.groups {
		c.events += len(g.events)
	}
	if c.events > maxSharedEvents {
		return
	}
	for s.events+c.events > maxSharedEvents && len(s.chunks) > 0 {
		oldest := 0
		for i, o := range s.chunks {
			if o.used < s.chunks[oldest].used {
				oldest = i
			}
		}
		s.events -= s.chunks[oldest].events
		s.chunks = append(s.chunks[:oldest], s.chunks[oldest+1:]...)
	}
	s.chunks = append(s.chunks, c)
	s.events += c.events
}
