package watch

import (
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// A hub that panics is rebuilt in place (package actors, supervision.go):
// the hub that panicked, hearing *actor.Restarting, ends every watch, each
// with the first revision it was not given (what its queue was pushed
// last, should the panic have come in the middle of handing a revision
// out), so that its stream resumes from the history as after a reset.
// Its successor starts with no watch, at the revision, commit and tail the
// old one knew, and first takes again the revisions of the events in hand
// that the old one had not finished: the kv actor sends them once, and a
// stream that resumes before the db holds them finds them in the tail. A
// watch being opened meanwhile is opened on the successor.

// hubHandoff is what a hub that panicked leaves to its successor.
type hubHandoff struct {
	rev, committed uint64
	tail           []*group
	stopping       bool
	redo           []messages.Event // the events in hand after rev
}

// handOver ends every watch and records what the successor starts from.
func (h *Hub) handOver() {
	if h.timer != nil {
		h.timer.Stop()
	}
	n := len(h.watchers)
	for _, w := range h.watchers {
		resume := h.resume(w)
		if p := w.q.lastPushed(); w.live && p+1 > resume {
			resume = p + 1
		}
		h.end(w, ReasonRestarted, resume)
	}
	h.log.Warn("watch hub restarting after a panic: watches ended", zap.Int("watches", n), zap.Uint64("revision", h.rev))
	left := &hubHandoff{rev: h.rev, committed: h.committed, stopping: h.stopping}
	// The tail through rev; what follows is taken again from the events.
	for _, g := range h.tail {
		if g.rev <= h.rev {
			left.tail = append(left.tail, g)
		}
	}
	if h.current != nil {
		for _, e := range h.current.Events {
			if e.Revision() > h.rev {
				left.redo = append(left.redo, e)
			}
		}
	}
	h.left = left
}

// takeOver takes the revisions the old hub had in hand and not finished.
func (h *Hub) takeOver() {
	left := h.handoff
	h.handoff = nil
	if len(left.redo) > 0 {
		h.apply(messages.WatchEvents{Events: left.redo})
	}
}

// Successor returns the hub that takes over from h once h heard
// *actor.Restarting. Called by the supervisor's producer.
func (h *Hub) Successor() *Hub {
	cfg := h.cfg
	cfg.Revision = h.left.rev
	next := NewHub(cfg)
	next.committed, next.tail, next.stopping = h.left.committed, h.left.tail, h.left.stopping
	next.handoff = h.left
	return next
}
