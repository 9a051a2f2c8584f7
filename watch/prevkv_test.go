package watch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/watch"
)

// prevEnv is an env whose hub gets the events with their Prev.
type prevEnv struct {
	*env
	relay *actor.PID
}

func newPrevEnv(t *testing.T) *prevEnv {
	t.Helper()
	e := &prevEnv{env: newEnv(t, watch.HubConfig{})}
	var err error
	e.relay, err = e.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return watchtest.NewPrevRelay(e.hub)
	}), "prev-relay")
	if err != nil {
		t.Fatal(err)
	}
	e.store.SetHub(e.relay)
	return e
}

// sync returns once the hub handled everything the store sent before.
func (e *prevEnv) sync(t *testing.T) {
	t.Helper()
	if _, err := e.system.Root.RequestFuture(e.relay, watchtest.RelaySync{}, 5*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	e.barrier(t)
}

func (e *prevEnv) openPrev(t *testing.T, f watch.Filter, start uint64, prevKV bool) *watch.Stream {
	t.Helper()
	s, err := watch.Open(watch.StreamConfig{Root: e.system.Root, Hub: e.hub, History: watchtest.PrevHistory{Store: e.store}, Filter: f, Start: start, PrevKV: prevKV})
	if err != nil {
		t.Fatalf("open %+v from %d: %v", f, start, err)
	}
	t.Cleanup(s.Close)
	return s
}

// A watcher with PrevKV gets each event with the key's record before it,
// whether the event comes from the db's history, the hub's tail or live,
// and whether it takes all of a revision or part; a put that created the
// key has none. Watchers without it are not given those encodings.
func TestPrevKV(t *testing.T) {
	e := newPrevEnv(t)
	e.store.Put("a", "1")    // 1
	e.store.Put("a", "2")    // 2
	e.store.Commit()         // 1 and 2 in the db's history
	e.store.Put("b", "\xff") // 3: in the hub's tail
	e.sync(t)

	const (
		putA1 = `{"type":"put","key":"a","value":"1","create_revision":1,"mod_revision":1,"version":1}`
		putA2 = `{"type":"put","key":"a","value":"2","create_revision":1,"mod_revision":2,"version":2`
		putB3 = `{"type":"put","key":"b","value_b64":"/w==","create_revision":3,"mod_revision":3,"version":1}`
		putA3 = `{"type":"put","key":"a","value":"3","create_revision":1,"mod_revision":4,"version":3`
		putB4 = `{"type":"put","key":"b","value":"4","create_revision":3,"mod_revision":4,"version":2`
		delA5 = `{"type":"delete","key":"a","mod_revision":5`
		putA5 = `{"type":"put","key":"a","value":"5","create_revision":5,"mod_revision":5,"version":1}`

		prevA1 = `,"prev_kv":{"key":"a","value":"1","create_revision":1,"mod_revision":1,"version":1}}`
		prevA2 = `,"prev_kv":{"key":"a","value":"2","create_revision":1,"mod_revision":2,"version":2}}`
		prevB3 = `,"prev_kv":{"key":"b","value_b64":"/w==","create_revision":3,"mod_revision":3,"version":1}}`
		prevA4 = `,"prev_kv":{"key":"a","value":"3","create_revision":1,"mod_revision":4,"version":3}}`
	)
	rev := func(r uint64, evs ...string) string {
		b := fmt.Appendf(nil, `{"revision":%d,"events":[`, r)
		for i, ev := range evs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, ev...)
		}
		return string(append(b, "]}"...))
	}
	want := map[string][]string{
		"every key":          {rev(1, putA1), rev(2, putA2+prevA1), rev(3, putB3), rev(4, putA3+prevA2, putB4+prevB3), rev(5, delA5+prevA4, putA5)},
		"a":                  {rev(1, putA1), rev(2, putA2+prevA1), rev(4, putA3+prevA2), rev(5, delA5+prevA4, putA5)},
		"b":                  {rev(3, putB3), rev(4, putB4+prevB3)},
		"every key, no prev": {rev(4, putA3+"}", putB4+"}"), rev(5, delA5+"}", putA5)},
		"a, no prev":         {rev(1, putA1), rev(2, putA2+"}"), rev(4, putA3+"}"), rev(5, delA5+"}", putA5)},
	}
	type stream struct {
		name  string
		s     *watch.Stream
		from  int // the first of want[name] it gets
		count int
	}
	streams := []stream{
		{"every key", e.openPrev(t, prefix(""), 1, true), 0, 5}, // the history, then the tail
		{"every key", e.openPrev(t, prefix(""), 3, true), 2, 3}, // tail, live
		{"every key", e.openPrev(t, prefix(""), 4, true), 3, 2}, // live, the whole revision
		{"a", e.openPrev(t, key("a"), 1, true), 0, 4},           // the history, then the tail
		{"a", e.openPrev(t, key("a"), 4, true), 2, 2},           // live, part of revision 4
		{"b", e.openPrev(t, key("b"), 3, true), 0, 2},           // tail, live
		{"a, no prev", e.openPrev(t, key("a"), 1, false), 0, 4}, // the history, then the tail
		{"a, no prev", e.openPrev(t, key("a"), 4, false), 2, 2}, // beside the filtered copy with prev
		{"a", e.openPrev(t, key("a"), 4, true), 2, 2},           // shares the copy with prev
		{"every key, no prev", e.openPrev(t, prefix(""), 4, false), 0, 2},
	}
	e.store.Apply([]watchtest.Op{watchtest.Put("a", "3"), watchtest.Put("b", "4")}) // 4
	e.store.Apply([]watchtest.Op{watchtest.Del("a"), watchtest.Put("a", "5")})      // 5
	got := make([][]watch.Item, len(streams))
	for i, st := range streams {
		got[i] = events(t, st.s, st.count)
		for j, it := range got[i] {
			if w := want[st.name][st.from+j]; string(it.JSON()) != w {
				t.Errorf("stream %d (%s), item %d:\n got %s\nwant %s", i, st.name, j, it.JSON(), w)
			}
		}
	}
	// The watchers of every key share one encoding of revision 4 with
	// prev_kv, and one without; the live watchers of a with prev_kv share
	// one filtered copy of it.
	if &got[2][0].JSON()[0] != &got[0][3].JSON()[0] || &got[9][0].JSON()[0] == &got[2][0].JSON()[0] {
		t.Error("revision 4 is not one encoding per prev_kv for the watchers of every key")
	}
	if &got[4][0].JSON()[0] != &got[8][0].JSON()[0] {
		t.Error("the watchers of a with prev_kv got separate copies of revision 4")
	}

	// Read back from the db's history, the same.
	e.store.Commit()
	e.sync(t)
	all := events(t, e.openPrev(t, prefix(""), 1, true), 5)
	for j, it := range all {
		if w := want["every key"][j]; string(it.JSON()) != w {
			t.Errorf("from the history, item %d:\n got %s\nwant %s", j, it.JSON(), w)
		}
	}
}
