package watch

import (
	"sync"

	"github.com/raftkv/node/messages"
)

// Events is one revision's events as a watcher takes them, carried by an
// Item of KindEvents beside their JSON. Watchers that take the same events
// the same way share one Events, and so share what a door makes of them
// (Encoding): etcd's gRPC door encodes a revision's protobuf once for all
// its watchers, as the hub encodes its JSON once. Read it, never change it.
type Events struct {
	Revision uint64
	// List is the events, in the order the entry made them. Each event's
	// Prev is filled in whatever PrevKV says.
	List []messages.Event
	// PrevKV says the watchers asked for the keys' previous records.
	PrevKV bool

	enc [MaxEncodings]struct {
		once sync.Once
		v    any
	}
}

// The slots of Events.Encoding, one per door that encodes events its own
// way. Nothing is encoded for a door that has no watcher of the events.
const (
	EncodingGRPC = iota // etcd's v3 API (package etcdapi)
	EncodingJSON        // the HTTP API's Server-Sent Events (JSON)
	MaxEncodings
)

// Encoding returns what encode makes of e in slot: encode runs once per
// slot, on the goroutine of the first caller, and every caller (watchers
// of other streams too) gets its result. Each slot is one door's, for one
// encoding.
func (e *Events) Encoding(slot int, encode func(*Events) any) any {
	s := &e.enc[slot]
	s.once.Do(func() { s.v = encode(e) })
	return s.v
}

// JSON is the events as the HTTP API sends them,
// {"revision":R,"events":[...]}, made once and shared.
func (e *Events) JSON() []byte {
	return e.Encoding(EncodingJSON, func(e *Events) any {
		return encodeGroup(e.Revision, e.List, encoding{filter: everything, prevKV: e.PrevKV})
	}).([]byte)
}

// Size is about what the events take in a watcher's queue: their keys and
// values, and a field's worth for each counter.
func (e *Events) Size() int {
	n := 32
	for _, ev := range e.List {
		n += 96 + len(ev.KV.Key) + len(ev.KV.Value)
		if e.PrevKV && ev.Prev != nil {
			n += 96 + len(ev.Prev.Key) + len(ev.Prev.Value)
		}
	}
	return n
}
