package watch

import (
	"strconv"

	"github.com/raftkv/node/messages"
)

// group is one revision's events, as one SSE event sends them. A revision
// is never split: a client resuming after it must not lose the rest.
type group struct {
	rev    uint64
	events []messages.Event
	shared [2]*Events
}

// payload is what one watcher's item of a revision carries.
type payload struct {
	evs *Events
}

// encoding is what one watcher's JSON of a revision depends on: watchers
// alike in it share one encoding.
type encoding struct {
	filter Filter
	prevKV bool
}

// groupByRevision splits events, in revision order, into their revisions.
// The groups alias events.
func groupByRevision(events []messages.Event) []*group {
	var gs []*group
	for i := 0; i < len(events); {
		rev := events[i].Revision()
		j := i + 1
		for j < len(events) && events[j].Revision() == rev {
			j++
		}
		gs = append(gs, &group{rev: rev, events: events[i:j:j]})
		i = j
	}
	return gs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// count is how many of the revision's events f takes.
func (g *group) count(f Filter) int {
	n := 0
	for _, e := range g.events {
		if f.Match(e.KV.Key) {
			n++
		}
	}
	return n
}

// fullEvents is the whole revision, as the items of watchers that take all
// of it carry it.
func (g *group) fullEvents(prevKV bool) *Events {
	i := b2i(prevKV)
	if g.shared[i] == nil {
		g.shared[i] = &Events{Revision: g.rev, List: g.events, PrevKV: prevKV}
	}
	return g.shared[i]
}

// payloadFor is what enc takes of the revision, n events: the shared
// encoding when that is all of them.
func (g *group) payloadFor(enc encoding, n int) payload {
	if n == len(g.events) {
		return payload{g.fullEvents(enc.prevKV)}
	}
	return payload{filterEvents(g.rev, g.events, enc)}
}

// filterEvents is the events enc's filter takes.
func filterEvents(rev uint64, events []messages.Event, enc encoding) *Events {
	evs := &Events{Revision: rev, PrevKV: enc.prevKV}
	for _, e := range events {
		if enc.filter.Match(e.KV.Key) {
			evs.List = append(evs.List, e)
		}
	}
	return evs
}

// encodeGroup writes {"revision":R,"events":[...]} with the events enc's
// filter takes.
func encodeGroup(rev uint64, events []messages.Event, enc encoding) []byte {
	size := 32
	for _, e := range events {
		size += 96 + len(e.KV.Key) + len(e.KV.Value)
		if enc.prevKV && e.Prev != nil {
			size += 96 + len(e.Prev.Key) + len(e.Prev.Value)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"revision":`...)
	b = strconv.AppendUint(b, rev, 10)
	b = append(b, `,"events":[`...)
	first := true
	for _, e := range events {
		if !enc.filter.Match(e.KV.Key) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendEvent(b, e, enc.prevKV)
	}
	return append(b, "]}"...)
}

// appendEvent appends e's JSON, with "prev_kv" (the previous record, as a
// range read writes a key) when asked and the key existed. The event's
// object is reopened to add it, so that messages.Event.AppendJSON stays the
// one encoding of the event's own fields.
func appendEvent(b []byte, e messages.Event, prevKV bool) []byte {
	b = e.AppendJSON(b)
	if !prevKV || e.Prev == nil {
		return b
	}
	b = append(b[:len(b)-1], `,"prev_kv":`...) // drop the event's closing brace
	b = e.Prev.AppendJSON(b, true)
	return append(b, '}')
}
