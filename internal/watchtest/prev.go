package watchtest

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/messages"
)

// The kv actor gives every event the key's record before it (Event.Prev);
// a Store's events lack it. A PrevRelay between a Store and the hub, and
// a PrevHistory in front of the Store's history, give it to them, so that
// tests of prev_kv see what a member serves.

// prevTracker gives events, taken in order from revision 1 on, the key's
// record before each.
type prevTracker map[string]messages.KV

func (p prevTracker) add(e messages.Event) messages.Event {
	if kv, ok := p[e.KV.Key]; ok {
		e.Prev = &kv
	}
	if e.Type == messages.EventDelete {
		delete(p, e.KV.Key)
	} else {
		p[e.KV.Key] = e.KV
	}
	return e
}

// PrevRelay stands between a Store and the hub (Store.SetHub to it),
// giving the events their Prev on the way, in the order the store sent
// them.
type PrevRelay struct {
	hub  *actor.PID
	prev prevTracker
}

// NewPrevRelay returns a relay to hub.
func NewPrevRelay(hub *actor.PID) *PrevRelay { return &PrevRelay{hub: hub, prev: prevTracker{}} }

// RelaySync, asked of a PrevRelay, is answered once what came before it
// was passed on to the hub.
type RelaySync struct{}

// Receive implements actor.Actor.
func (r *PrevRelay) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case messages.WatchEvents:
		evs := make([]messages.Event, len(m.Events))
		for i, e := range m.Events {
			evs[i] = r.prev.add(e)
		}
		ctx.Send(r.hub, messages.WatchEvents{Events: evs, Revision: m.Revision})
	case messages.WatchReset:
		clear(r.prev) // the store's events start again
		ctx.Send(r.hub, m)
	case messages.WatchCommitted:
		ctx.Send(r.hub, m)
	case RelaySync:
		ctx.Respond(m)
	}
}

// PrevHistory is a Store's history with each event's Prev, as the kv
// actor's db serves it.
type PrevHistory struct{ Store *Store }

// ReadEvents implements watch.History.
func (h PrevHistory) ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (uint64, error) {
	// The events read first, and the whole history after: a test's writer
	// runs beside the reader, and the history only grows, so every event
	// read is in it (Store.ReadEvents holds the store's lock while it
	// calls fn: the store cannot be asked from in there).
	var read []messages.Event
	through, err := h.Store.ReadEvents(from, maxEvents, func(e messages.Event) { read = append(read, e) })
	if err != nil {
		return through, err
	}
	prev := prevTracker{}
	var all []messages.Event
	for _, e := range h.Store.Events(1, math.MaxUint64, func(string) bool { return true }) {
		all = append(all, prev.add(e))
	}
	// The store passes a run of its events in order, from the first at
	// or after from.
	i, _ := slices.BinarySearchFunc(all, from, func(e messages.Event, rev uint64) int {
		return cmp.Compare(e.Revision(), rev)
	})
	for _, e := range read {
		if i >= len(all) || all[i].KV.Key != e.KV.Key || all[i].Revision() != e.Revision() {
			return 0, fmt.Errorf("event %s@%d is not the store's %d-th", e.KV.Key, e.Revision(), i)
		}
		e.Prev = all[i].Prev
		i++
		fn(e)
	}
	return through, nil
}
