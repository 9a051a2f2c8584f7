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
	// full is the JSON of all the events, made at most once and shared by
	// every watcher that takes all of them.
	full []byte
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

// fullJSON is the JSON of the whole revision.
func (g *group) fullJSON() []byte {
	if g.full == nil {
		g.full = encodeGroup(g.rev, g.events, Filter{Prefix: true})
	}
	return g.full
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

// jsonFor is the JSON of what f takes of the revision, n events: the shared
// encoding when that is all of them.
func (g *group) jsonFor(f Filter, n int) []byte {
	if n == len(g.events) {
		return g.fullJSON()
	}
	return encodeGroup(g.rev, g.events, f)
}

// encodeGroup writes {"revision":R,"events":[...]} with the events f takes.
func encodeGroup(rev uint64, events []messages.Event, f Filter) []byte {
	size := 32
	for _, e := range events {
		size += 96 + len(e.KV.Key) + len(e.KV.Value)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"revision":`...)
	b = strconv.AppendUint(b, rev, 10)
	b = append(b, `,"events":[`...)
	first := true
	for _, e := range events {
		if !f.Match(e.KV.Key) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = e.AppendJSON(b)
	}
	return append(b, "]}"...)
}
