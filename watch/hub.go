package watch

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// Hub is the watch actor of a member; see the package doc.
type Hub struct {
	cfg HubConfig
	log *zap.Logger
	m   *metrics.Watch

	rev       uint64 // the store's, as the kv actor's events told
	committed uint64 // the db holds the history through it
	// tail is the revisions after committed, which a stream that read the
	// db up to committed still needs.
	tail []*group

	watchers  map[*queue]*watcher // every open watch, catching up or live
	openCount atomic.Int64        // len(watchers), for the streams (Stream.Watchers)
	live      index               // the live ones, by what they watch
	stopping  bool                // after StopWatches: no new watch opens
	timer     *time.Timer         // sends the next progressTick

	// Scratch for one revision: the events each watcher takes, and the
	// filtered copies made, shared by watchers of the same encoding.
	counts   map[*watcher]int
	filtered map[encoding]payload

	// After a panic (hub_rebuild.go): left is what this hub hands its
	// successor. beforeDispatch, nil but in this package's tests, runs
	// before each revision is handed out.
	left           *hubHandoff
	handoff        *hubHandoff
	current        *messages.WatchEvents // the events being handed out
	beforeDispatch func()
}

// watcher is the hub's side of one stream.
type watcher struct {
	q      *queue
	filter Filter
	prevKV bool // its events carry the keys' previous records
	live   bool
	// after is where the watcher went live: it has, or needs no more,
	// every event through max(after, the hub's revision). It is above the
	// hub's revision only for a watch that starts in the future (a client
	// that read further on another member).
	after uint64
	// wantsProgress: a progress mark was asked for (Progress) while the
	// watcher was catching up; it gets one when it goes live.
	wantsProgress bool
}

func (w *watcher) encoding() encoding { return encoding{filter: w.filter, prevKV: w.prevKV} }

// NewHub returns the hub; spawn it before the kv actor, which sends to it.
func NewHub(cfg HubConfig) *Hub {
	cfg = cfg.withDefaults()
	return &Hub{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         &cfg.Metrics.Watch,
		rev:       cfg.Revision,
		committed: cfg.Revision,
		watchers:  make(map[*queue]*watcher),
		live:      newIndex(),
		counts:    make(map[*watcher]int),
		filtered:  make(map[encoding]payload),
	}
}

// Receive implements actor.Actor.
func (h *Hub) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.arm(ctx)
		if h.handoff != nil {
			h.takeOver()
		}
	case *actor.Restarting:
		h.handOver()
	case *actor.Stopping:
		if h.timer != nil {
			h.timer.Stop()
		}
		h.stopAll()
	case actor.SystemMessage, actor.AutoReceiveMessage:
	case messages.WatchEvents:
		h.current = &m
		h.apply(m)
		h.current = nil
	case messages.WatchCommitted:
		h.commit(m.Revision)
		if h.cfg.History != nil {
			h.cfg.History.compactedTo(m.Compacted)
		}
	case messages.WatchReset:
		h.reset(m)
	case openWatch:
		ctx.Respond(h.open(m))
	case goLive:
		ctx.Respond(h.goLive(m))
	case closeWatch:
		if w := h.watchers[m.q]; w != nil {
			h.remove(w)
		}
	case progressRequest:
		ctx.Respond(h.progressNow(m))
	case progressTick:
		h.progress()
		h.arm(ctx)
	case StopWatches:
		h.stopAll()
		ctx.Respond(WatchesStopped{})
	default:
		h.log.Warn("watch hub got an unknown message", zap.String("type", fmt.Sprintf("%T", m)))
	}
}

// arm sets the timer for the next progress marks. One timer re-armed per
// tick handled: ticks never pile up behind a busy mailbox.
func (h *Hub) arm(ctx actor.Context) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	h.timer = time.AfterFunc(h.cfg.ProgressInterval, func() { root.Send(self, progressTick{}) })
}

func (h *Hub) open(m openWatch) any {
	if h.stopping {
		return messages.ErrStopped
	}
	if len(h.watchers) >= h.cfg.MaxWatchers {
		return ErrTooManyWatchers
	}
	m.q.mu.Lock()
	m.q.maxEvents, m.q.maxBytes = h.cfg.MaxQueuedEvents, h.cfg.MaxQueuedBytes
	m.q.mu.Unlock()
	w := &watcher{q: m.q, filter: m.filter, prevKV: m.prevKV}
	h.watchers[m.q] = w
	h.counted()
	after := h.rev
	if m.start > 0 {
		after = m.start - 1
	}
	o := opened{revision: h.rev, after: after, committed: h.committed, metrics: h.m, watchers: &h.openCount}
	if after >= h.committed {
		h.goLiveFrom(w, after)
		o.live = true
	}
	return o
}

func (h *Hub) goLive(m goLive) wentLive {
	w := h.watchers[m.q]
	if w == nil || w.live {
		return wentLive{ok: true}
	}
	if m.through < h.committed {
		return wentLive{committed: h.committed}
	}
	h.goLiveFrom(w, m.through)
	return wentLive{ok: true}
}

// goLiveFrom gives w the tail after revision after, then the live events:
// both in this one step of the mailbox, so that no event comes between.
func (h *Hub) goLiveFrom(w *watcher, after uint64) {
	w.live, w.after = true, after
	for _, g := range h.tail {
		if g.rev <= after {
			continue
		}
		n := g.count(w.filter)
		if n == 0 {
			continue
		}
		p := g.payloadFor(w.encoding(), n)
		if !w.q.push(g.rev, p.evs.Size(), p.evs) {
			h.overflow(w, g.rev)
			return
		}
	}
	h.live.add(w)
	if w.wantsProgress {
		w.wantsProgress = false
		w.q.pushProgress(max(after, h.rev))
	}
}

// apply hands each revision to the live watchers that take part of it. It
// never waits on a watcher: a full queue ends its watcher.
func (h *Hub) apply(m messages.WatchEvents) {
	for _, g := range groupByRevision(m.Events) {
		if g.rev <= h.rev {
			// Sent before: a watcher given it again would repeat it.
			h.log.Warn("watch hub got events of a revision it has seen; dropped them",
				zap.Uint64("revision", g.rev), zap.Uint64("hub_revision", h.rev))
			continue
		}
		if g.rev > h.committed {
			h.tail = append(h.tail, g)
		}
		if h.beforeDispatch != nil {
			h.beforeDispatch()
		}
		// A failpoint (scripts/build-failpoints.sh).
		// gofail: var watchBeforeDispatch struct{}

		h.dispatch(g)
		h.rev = g.rev
	}
	h.rev = max(h.rev, m.Revision)
}

func (h *Hub) dispatch(g *group) {
	clear(h.counts)
	take := func(w *watcher) {
		if g.rev > w.after {
			h.counts[w]++
		}
	}
	for _, e := range g.events {
		h.live.each(e.KV.Key, take)
	}
	if len(h.counts) == 0 {
		return
	}
	clear(h.filtered)
	for w, n := range h.counts {
		var p payload
		if n == len(g.events) {
			p = payload{g.fullEvents(w.prevKV)}
		} else if enc := w.encoding(); h.filtered[enc].evs != nil {
			p = h.filtered[enc]
		} else {
			p = g.payloadFor(enc, n)
			h.filtered[enc] = p
		}
		if !w.q.push(g.rev, p.evs.Size(), p.evs) {
			h.overflow(w, g.rev)
		}
	}
	clear(h.counts)
	clear(h.filtered) // the bytes belong to the queues now
}

// commit trims the tail: a stream reads what the db holds from the db.
func (h *Hub) commit(rev uint64) {
	h.committed = max(h.committed, rev)
	i := 0
	for i < len(h.tail) && h.tail[i].rev <= h.committed {
		i++
	}
	h.tail = slices.Delete(h.tail, 0, i)
}

// reset ends every watch: the events between the hub's revision and the
// snapshot's will never come, and the new db's history serves the
// clients' resumes.
func (h *Hub) reset(m messages.WatchReset) {
	n := len(h.watchers)
	for _, w := range h.watchers {
		h.end(w, ReasonReset, h.resume(w))
	}
	h.log.Info("state replaced by a snapshot: watches ended",
		zap.Int("watches", n), zap.Uint64("from_revision", h.rev),
		zap.Uint64("revision", m.Revision), zap.Uint64("compacted", m.Compacted))
	h.rev, h.committed = m.Revision, m.Revision
	h.tail = nil
	if h.cfg.History != nil {
		h.cfg.History.reset(m.Compacted)
	}
}

func (h *Hub) stopAll() {
	h.stopping = true
	for _, w := range h.watchers {
		h.end(w, ReasonStopping, h.resume(w))
	}
}

// progress gives each live watcher its covered revision, behind what its
// queue holds. A watcher catching up gets none: it is not there yet.
func (h *Hub) progress() {
	for _, w := range h.watchers {
		if w.live {
			w.q.pushProgress(max(w.after, h.rev))
		}
	}
}

// progressNow gives each of the watchers a progress mark now, or, to one
// catching up, when it goes live; it answers the hub's revision, which
// each mark covers.
func (h *Hub) progressNow(m progressRequest) uint64 {
	for _, q := range m.qs {
		w := h.watchers[q]
		switch {
		case w == nil:
		case w.live:
			w.q.pushProgress(max(w.after, h.rev))
		default:
			w.wantsProgress = true
		}
	}
	return h.rev
}

// resume is the first revision w was not given; 0 for a watcher catching
// up, whose stream alone knows how far it read.
func (h *Hub) resume(w *watcher) uint64 {
	if !w.live {
		return 0
	}
	return max(w.after, h.rev) + 1
}

func (h *Hub) overflow(w *watcher, rev uint64) {
	h.m.Overflows.Inc()
	h.log.Debug("watcher overflowed", redact.Key(w.filter.Key), zap.Bool("prefix", w.filter.Prefix), zap.Uint64("resume", rev))
	h.end(w, ReasonOverflow, rev)
}

func (h *Hub) end(w *watcher, reason string, resume uint64) {
	h.remove(w)
	w.q.end(reason, resume)
}

func (h *Hub) remove(w *watcher) {
	delete(h.watchers, w.q)
	if w.live {
		h.live.remove(w)
	}
	h.counted()
}

func (h *Hub) counted() {
	h.openCount.Store(int64(len(h.watchers)))
	h.m.Watchers.Set(float64(len(h.watchers)))
}
