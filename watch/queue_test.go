package watch

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/raftkv/node/messages"
)

// A stalled client's queue does not fill with progress marks: one waiting
// behind nothing newer moves up.
func TestQueueCoalescesProgress(t *testing.T) {
	q := newQueue(nil)
	q.maxEvents, q.maxBytes = 10, 1000
	q.pushProgress(3)
	q.pushProgress(4)
	q.push(5, 1, nil)
	q.pushProgress(5)
	q.pushProgress(6)
	got := q.take(nil)
	want := []Item{{Kind: KindProgress, Revision: 4}, {Kind: KindEvents, Revision: 5}, {Kind: KindProgress, Revision: 6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Bounds count what waits, not what the stream took; nothing follows an
// end; onEnd runs once, and never after close.
func TestQueueBoundsAndEnd(t *testing.T) {
	ends := 0
	q := newQueue(func() { ends++ })
	q.maxEvents, q.maxBytes = 2, 10
	if !q.push(1, 5, nil) || !q.push(2, 5, nil) {
		t.Fatal("pushes within the bounds refused")
	}
	if q.push(3, 1, nil) {
		t.Fatal("a third event accepted over a bound of 2")
	}
	q.take(nil)
	if !q.push(3, 10, nil) {
		t.Fatal("the queue did not free its room when taken")
	}
	if q.push(4, 1, nil) {
		t.Fatal("a byte over the bound accepted")
	}
	q.end(ReasonOverflow, 4)
	q.end(ReasonReset, 9)
	q.push(5, 1, nil)
	q.pushProgress(5)
	got := q.take(nil)
	if len(got) != 2 || got[1].Kind != KindEnd || got[1].Reason != ReasonOverflow || got[1].Revision != 4 {
		t.Fatalf("after the end: %v", got)
	}
	if ends != 1 {
		t.Fatalf("onEnd ran %d times", ends)
	}
	q2 := newQueue(func() { t.Error("onEnd ran after close") })
	q2.close()
	q2.end(ReasonStopping, 1)
}

// A watcher catching up gets no progress mark: the hub does not know how
// far it is. One that is live does, at the hub's revision, or at its own
// start when that is ahead.
func TestProgressOnlyForLiveWatchers(t *testing.T) {
	h := NewHub(HubConfig{Revision: 10})
	catching, live, future := newQueue(nil), newQueue(nil), newQueue(nil)
	h.open(openWatch{q: catching, filter: Filter{Key: "a"}, start: 2})
	h.open(openWatch{q: live, filter: Filter{Key: "a"}})
	h.open(openWatch{q: future, filter: Filter{Key: "a"}, start: 31})
	h.progress()
	if got := catching.take(nil); len(got) != 0 {
		t.Errorf("catching up: %v", got)
	}
	if got := live.take(nil); len(got) != 1 || got[0].Kind != KindProgress || got[0].Revision != 10 {
		t.Errorf("live: %v", got)
	}
	if got := future.take(nil); len(got) != 1 || got[0].Revision != 30 {
		t.Errorf("future start: %v", got)
	}
}

// The index finds the same watchers whichever way it looks prefixes up.
func TestIndexEach(t *testing.T) {
	for _, n := range []int{1, 50} { // fewer distinct prefixes than the key is long, and more
		x := newIndex()
		var ws []*watcher
		add := func(f Filter) {
			w := &watcher{filter: f}
			ws = append(ws, w)
			x.add(w)
		}
		add(Filter{Key: "abc"})
		add(Filter{Key: "ab"})
		add(Filter{Key: "", Prefix: true})
		add(Filter{Key: "ab", Prefix: true})
		add(Filter{Key: "abcd", Prefix: true})
		for i := range n {
			add(Filter{Key: fmt.Sprintf("z%d", i), Prefix: true})
		}
		got := map[*watcher]bool{}
		x.each("abc", func(w *watcher) { got[w] = true })
		for _, w := range ws {
			if got[w] != w.filter.Match("abc") {
				t.Errorf("%d prefixes: %+v found %v", n, w.filter, got[w])
			}
		}
		for _, w := range ws {
			x.remove(w)
		}
		if len(x.keys)+len(x.prefixes) != 0 {
			t.Errorf("index not empty after removing every watcher")
		}
	}
}

// A revision's JSON is the events the filter takes, in order, with
// "prev_kv" for a watcher that asks for it and only where the key existed.
func TestEncodeGroup(t *testing.T) {
	evs := []messages.Event{
		{Type: messages.EventPut, KV: messages.KV{Key: "a", Value: []byte("1"), CreateRevision: 3, ModRevision: 7, Version: 2},
			Prev: &messages.KV{Key: "a", Value: []byte("0"), CreateRevision: 3, ModRevision: 5, Version: 1}},
		{Type: messages.EventDelete, KV: messages.KV{Key: "b", ModRevision: 7},
			Prev: &messages.KV{Key: "b", Value: []byte("\xfe"), CreateRevision: 2, ModRevision: 2, Version: 1}},
		{Type: messages.EventPut, KV: messages.KV{Key: "\xff", Value: []byte("\x00"), CreateRevision: 7, ModRevision: 7, Version: 1}},
	}
	putA := `{"type":"put","key":"a","value":"1","create_revision":3,"mod_revision":7,"version":2`
	delB := `{"type":"delete","key":"b","mod_revision":7`
	putFF := `{"type":"put","key_b64":"/w==","value":"\u0000","create_revision":7,"mod_revision":7,"version":1}`
	prevA := `,"prev_kv":{"key":"a","value":"0","create_revision":3,"mod_revision":5,"version":1}}`
	prevB := `,"prev_kv":{"key":"b","value_b64":"/g==","create_revision":2,"mod_revision":2,"version":1}}`
	for _, c := range []struct {
		name string
		enc  encoding
		want string
	}{
		{"every key", encoding{filter: everything}, `{"revision":7,"events":[` + putA + `},` + delB + `},` + putFF + `]}`},
		{"filtered", encoding{filter: Filter{Key: "b"}}, `{"revision":7,"events":[` + delB + `}]}`},
		{"every key, prev_kv", encoding{filter: everything, prevKV: true}, `{"revision":7,"events":[` + putA + prevA + `,` + delB + prevB + `,` + putFF + `]}`},
		{"filtered, prev_kv", encoding{filter: Filter{Key: "b"}, prevKV: true}, `{"revision":7,"events":[` + delB + prevB + `]}`},
		{"created key, prev_kv", encoding{filter: Filter{Key: "\xff"}, prevKV: true}, `{"revision":7,"events":[` + putFF + `]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := encodeGroup(7, evs, c.enc)
			if string(got) != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
		})
	}
	g := groupByRevision(evs)
	full := func(prevKV bool) []byte { return g[0].fullEvents(prevKV).JSON() }
	if len(g) != 1 || &full(false)[0] != &full(false)[0] || &full(true)[0] != &full(true)[0] {
		t.Fatal("a revision's JSON made twice")
	}
	if string(full(false)) == string(full(true)) {
		t.Fatal("the encodings with and without prev_kv are one")
	}
}
