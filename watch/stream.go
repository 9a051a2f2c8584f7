package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// StreamConfig says what to watch, from where, and through which hub.
type StreamConfig struct {
	Root *actor.RootContext // of the hub's actor system
	Hub  *actor.PID
	// History is the member's db; nil is a member without history, where
	// any past start is compacted.
	History History
	Filter  Filter
	// Start is the first revision to send; 0 means those after the current
	// revision (Stream.Revision).
	Start uint64
	// PrevKV adds to each event the key's record before it (Event.Prev),
	// as etcd's prev_kv does: "prev_kv" in the event's JSON, absent for a
	// put that created the key.
	PrevKV bool
	// OnEnd, if set, runs once when the hub ends the stream (overflow,
	// reset, stopping), on the hub's goroutine: it must not block. It
	// never runs after Close returned. A server uses it to bound the
	// writes still to come to a client that may not be reading.
	OnEnd func()
	// Timeout bounds each request to the hub; zero means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds a stream's requests to the hub, which answers at
// once unless the member is overloaded.
const DefaultTimeout = 5 * time.Second

// catchUpEvents is how many events of the history one read takes: the
// read holds a db transaction meanwhile, and its events are in memory.
const catchUpEvents = 256

// everything is the filter of events already filtered.
var everything = Filter{Prefix: true}

// Stream is one watch. Its methods are for the one goroutine that serves
// it, except Close, which may be called from any.
type Stream struct {
	cfg      StreamConfig
	q        *queue
	m        *metrics.Watch
	revision uint64
	live     bool // the hub gives the events; else the stream reads the db
	done     bool // the end item was returned
	// next is the first revision the items returned so far do not cover.
	next uint64
	// target is, while catching up, the revision to read the db through
	// before asking to go live: what the hub last said the db committed.
	target   uint64
	pending  []Item        // read by Open, returned by the first Next
	watchers *atomic.Int64 // the hub's count of open watches
	close    sync.Once
}

// Open opens a watch. A start the history no longer holds fails with a
// *messages.CompactedError before anything is sent, so that the caller
// can refuse the request; so do ErrTooManyWatchers and messages.ErrStopped
// (the member stops). The caller must Close the stream.
func Open(cfg StreamConfig) (*Stream, error) {
	if cfg.Root == nil || cfg.Hub == nil {
		return nil, errors.New("watch: no hub")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Stream{cfg: cfg, q: newQueue(cfg.OnEnd)}
	reply, err := cfg.Root.RequestFuture(cfg.Hub, openWatch{q: s.q, filter: cfg.Filter, start: cfg.Start, prevKV: cfg.PrevKV}, cfg.Timeout).Result()
	if err != nil {
		// The hub may still register it: tell it the stream is gone.
		s.Close()
		return nil, fmt.Errorf("open a watch: %w", err)
	}
	var o opened
	switch r := reply.(type) {
	case opened:
		o = r
	case error:
		s.q.close()
		return nil, fmt.Errorf("open a watch: %w", r)
	default:
		s.Close()
		return nil, fmt.Errorf("open a watch: the hub answered %T", reply)
	}
	s.m, s.revision, s.next, s.live, s.target = o.metrics, o.revision, o.after+1, o.live, o.committed
	s.watchers = o.watchers
	if !s.live {
		// The first read tells a compacted start before the caller
		// answers anything.
		if s.pending, err = s.read(nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Revision is the store's revision when the stream opened: without a
// Start, the stream sends the revisions after it.
func (s *Stream) Revision() uint64 { return s.revision }

// Next appends what the stream has to send next to dst, waiting for it if
// need be: events, progress marks, and last an item of KindEnd. It returns
// what it appended, nil when it had something; io.EOF once the end item
// was returned, ctx's error when ctx is done, or the error of a history
// read (a catch-up that the compaction overtook fails with a
// *messages.CompactedError; the client resuming from its last event id
// learns where the history starts).
func (s *Stream) Next(ctx context.Context, dst []Item) ([]Item, error) {
	if len(s.pending) > 0 {
		dst = append(dst, s.pending...)
		s.m.EventsSent.Add(float64(len(s.pending)))
		s.pending = nil
		return dst, nil
	}
	for {
		if s.done {
			return dst, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		if !s.live {
			if err := s.catchUp(); err != nil {
				return dst, err
			}
			if !s.live {
				n := len(dst)
				var err error
				if dst, err = s.read(dst); err != nil {
					return dst[:n], err
				}
				if len(dst) > n {
					s.m.EventsSent.Add(float64(len(dst) - n))
					return dst, nil
				}
				continue
			}
		}
		n := len(dst)
		if dst = s.q.take(dst); len(dst) > n {
			s.took(dst[n:])
			return dst, nil
		}
		select {
		case <-s.q.ready:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// Covered is the revision through which the stream returned every event
// its filter takes: events and progress marks move it on, and so does
// reading the history, even where it found nothing to return.
func (s *Stream) Covered() uint64 { return s.next - 1 }

// Progress asks the hub for a progress mark in each stream: a live one
// gets it behind what its queue holds, one catching up once it goes live.
// It returns the hub's revision, which each mark covers: once every
// stream's Covered reached it, every stream returned all its events
// through it. With no streams it only asks the revision.
func Progress(root *actor.RootContext, hub *actor.PID, timeout time.Duration, streams ...*Stream) (uint64, error) {
	if root == nil || hub == nil {
		return 0, errors.New("watch: no hub")
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	qs := make([]*queue, len(streams))
	for i, s := range streams {
		qs[i] = s.q
	}
	reply, err := root.RequestFuture(hub, progressRequest{qs: qs}, timeout).Result()
	if err != nil {
		return 0, fmt.Errorf("watch progress: %w", err)
	}
	rev, ok := reply.(uint64)
	if !ok {
		return 0, fmt.Errorf("watch progress: the hub answered %T", reply)
	}
	return rev, nil
}

// Watchers is how many watches the member has open, this one included: a
// server may pace a stream's writes by it.
func (s *Stream) Watchers() int {
	if s.watchers == nil {
		return 1
	}
	return int(s.watchers.Load())
}

// More appends what a live stream has queued now, without waiting, so that
// a writer that paused to batch its writes takes what came meanwhile.
func (s *Stream) More(dst []Item) []Item {
	if !s.live || s.done {
		return dst
	}
	n := len(dst)
	dst = s.q.take(dst)
	s.took(dst[n:])
	return dst
}

// catchUp asks the hub to go live once the db was read as far as the hub
// last said it committed; the hub ending the watch meanwhile goes live
// too, to its end.
func (s *Stream) catchUp() error {
	if s.q.isEnded() {
		s.live = true
		return nil
	}
	if s.next <= s.target {
		return nil // read more first
	}
	reply, err := s.cfg.Root.RequestFuture(s.cfg.Hub, goLive{q: s.q, through: s.next - 1}, s.cfg.Timeout).Result()
	if err != nil {
		return fmt.Errorf("watch going live: %w", err)
	}
	r, ok := reply.(wentLive)
	if !ok {
		return fmt.Errorf("watch going live: the hub answered %T", reply)
	}
	if r.ok {
		s.live = true
	} else {
		s.target = r.committed
	}
	return nil
}

// read appends the next chunk of the db's history that the filter takes,
// one item per revision.
func (s *Stream) read(dst []Item) ([]Item, error) {
	if s.cfg.History == nil {
		return dst, &messages.CompactedError{Revision: s.next, Compacted: s.target}
	}
	s.m.CatchUpReads.Inc()
	from := s.next
	var through uint64
	if sh, ok := s.cfg.History.(*SharedHistory); ok {
		gs, t, err := sh.groups(from)
		if err != nil {
			return dst, fmt.Errorf("read the history from revision %d: %w", from, err)
		}
		through = t
		enc := encoding{filter: s.cfg.Filter, prevKV: s.cfg.PrevKV}
		for _, g := range gs {
			if n := g.count(s.cfg.Filter); n > 0 {
				dst = append(dst, Item{Kind: KindEvents, Revision: g.rev, Events: g.payloadFor(enc, n).evs})
			}
		}
	} else {
		var (
			rev uint64
			evs []messages.Event
			err error
		)
		flush := func() {
			if len(evs) > 0 {
				dst = append(dst, Item{Kind: KindEvents, Revision: rev,
					Events: &Events{Revision: rev, List: slices.Clone(evs), PrevKV: s.cfg.PrevKV}})
				evs = evs[:0]
			}
		}
		through, err = s.cfg.History.ReadEvents(from, catchUpEvents, func(e messages.Event) {
			if e.Revision() != rev {
				flush()
				rev = e.Revision()
			}
			if s.cfg.Filter.Match(e.KV.Key) {
				evs = append(evs, e)
			}
		})
		if err != nil {
			return dst, fmt.Errorf("read the history from revision %d: %w", from, err)
		}
		flush()
	}
	if through < from && from <= s.target {
		// The db ends before the revision the hub saw it commit: only a
		// state being replaced does that, and the hub ends the watch.
		// Rather than read in a loop meanwhile, the stream ends here.
		return dst, fmt.Errorf("watch: the history ends at revision %d, before the committed %d", through, s.target)
	}
	s.next = max(s.next, through+1)
	return dst, nil
}

// took notes how far the items from the hub cover, and gives the end item
// its resume revision.
func (s *Stream) took(items []Item) {
	for i := range items {
		it := &items[i]
		switch it.Kind {
		case KindEvents:
			s.m.EventsSent.Inc()
			s.next = max(s.next, it.Revision+1)
		case KindProgress:
			s.next = max(s.next, it.Revision+1)
		case KindEnd:
			// The hub knows the revisions a live watcher skipped; a
			// stream still catching up knows how far it read.
			it.Revision = max(it.Revision, s.next)
			s.done = true
		}
	}
}

// Close ends the stream and tells the hub. Calling it again does nothing.
func (s *Stream) Close() {
	s.close.Do(func() {
		s.q.close()
		s.cfg.Root.Send(s.cfg.Hub, closeWatch{q: s.q})
	})
}
