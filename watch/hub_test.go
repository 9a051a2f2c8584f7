package watch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// Each watcher gets what its filter takes of each revision; watchers that
// take a whole revision share one encoding of it.
func TestHubFiltersAndSharesEncoding(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	ka, kb, pa := e.open(t, key("a"), 0), e.open(t, key("b"), 0), e.open(t, prefix("a"), 0)
	all1, all2, none := e.open(t, prefix(""), 0), e.open(t, prefix(""), 0), e.open(t, key("zzz"), 0)

	r1 := e.store.Apply([]watchtest.Op{watchtest.Put("a", "1"), watchtest.Put("ab", "2"), watchtest.Put("b", "3")})
	r2 := e.store.Delete("a")
	r3 := e.store.Put("zzz", "last")

	checkExact(t, e.store, events(t, ka, 2), key("a"), 1, r2)
	checkExact(t, e.store, events(t, kb, 1), key("b"), 1, r2)
	checkExact(t, e.store, events(t, pa, 2), prefix("a"), 1, r2)
	got1, got2 := events(t, all1, 3), events(t, all2, 3)
	checkExact(t, e.store, got1, prefix(""), 1, r3)
	checkExact(t, e.store, got2, prefix(""), 1, r3)
	// The first thing the zzz watcher gets is revision 3: nothing of 1 or 2.
	checkExact(t, e.store, events(t, none, 1), key("zzz"), 1, r3)

	if &got1[0].JSON()[0] != &got2[0].JSON()[0] {
		t.Error("two watchers of every key got separate encodings of revision 1")
	}
	// Revision 2 is one delete of a: the watcher of a takes all of it.
	if ka2 := events(t, e.open(t, key("a"), r2), 1); &ka2[0].JSON()[0] != &got1[1].JSON()[0] {
		t.Error("the watcher of a did not share the encoding of revision 2")
	}
	if r1 != 1 {
		t.Fatalf("first revision %d", r1)
	}
}

// A revision comes as one item with every event of it that the filter
// takes, in order, and revisions come in order, when one apply makes
// several.
func TestHubRevisionsInOrderNeverSplit(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	s := e.open(t, prefix("k"), 0)
	last := e.store.Apply(
		[]watchtest.Op{watchtest.Put("k1", "a"), watchtest.Put("x", "no"), watchtest.Put("k2", "b")},
		[]watchtest.Op{watchtest.Put("k3", "c")},
		[]watchtest.Op{watchtest.Del("k1"), watchtest.Del("k2"), watchtest.Put("k1", "again")},
	)
	checkExact(t, e.store, events(t, s, 3), prefix("k"), 1, last)
}

// A watcher that does not read is ended at its bound, with the first
// revision it was not given as where to resume (a skipped revision is not
// that one), without holding the hub up.
func TestHubOverflowResumesAtFirstRevisionNotGiven(t *testing.T) {
	e := newEnv(t, watch.HubConfig{MaxQueuedEvents: 3})
	s := e.open(t, key("a"), 0)
	e.store.Put("a", "1") // 1
	e.store.Put("b", "-") // 2: not taken
	e.store.Put("a", "3") // 3
	e.store.Put("a", "4") // 4
	e.store.Put("b", "-") // 5: not taken
	e.store.Put("a", "6") // 6: the fourth queued, one too many
	e.store.Put("a", "7")
	e.barrier(t)

	got := until(t, s, watch.KindEnd)
	if revs(got) != "1 3 4 end(overflow,6)" {
		t.Fatalf("got %s", revs(got))
	}
	if n := testutil.ToFloat64(e.m.Watch.Overflows); n != 1 {
		t.Errorf("overflows = %v", n)
	}
	// Resuming from 6 picks up exactly where it stopped.
	e.store.Commit()
	r := e.open(t, key("a"), 6)
	checkExact(t, e.store, events(t, r, 2), key("a"), 6, 7)
}

// The byte bound ends a watcher before a revision that does not fit whole.
func TestHubOverflowByBytesNeverSplitsARevision(t *testing.T) {
	big := strings.Repeat("x", 300)
	e := newEnv(t, watch.HubConfig{MaxQueuedBytes: 1000})
	s := e.open(t, prefix(""), 0)
	e.store.Put("a", big)                                                           // 1: ~400 bytes
	e.store.Apply([]watchtest.Op{watchtest.Put("b", big), watchtest.Put("c", big)}) // 2: ~800 bytes: does not fit
	e.store.Apply([]watchtest.Op{watchtest.Put("d", "small")})                      // 3
	e.barrier(t)
	got := until(t, s, watch.KindEnd)
	if revs(got) != "1 end(overflow,2)" {
		t.Fatalf("got %s", revs(got))
	}
}

// Progress marks follow the events before them and say the hub's
// revision, including revisions the filter does not take.
func TestHubProgressMarks(t *testing.T) {
	e := newEnv(t, watch.HubConfig{ProgressInterval: 5e6})
	s := e.open(t, key("a"), 0)
	e.store.Put("a", "1")
	e.store.Put("b", "2")
	var seen []watch.Item
	for {
		items := next(t, s)
		seen = append(seen, items...)
		if it := items[len(items)-1]; it.Kind == watch.KindProgress && it.Revision >= 2 {
			break
		}
	}
	e.store.Put("a", "3")
	seen = append(seen, events(t, s, 1)...)
	var last uint64
	for _, it := range seen {
		switch {
		case it.Kind == watch.KindEvents && it.Revision <= last:
			t.Fatalf("event %d after progress or event %d: %s", it.Revision, last, revs(seen))
		case it.Kind == watch.KindProgress && it.Revision < last:
			t.Fatalf("progress %d after %d: %s", it.Revision, last, revs(seen))
		}
		last = it.Revision
	}
}

// A snapshot replacing the state ends every watch, live or catching up,
// each resuming after what it had.
func TestHubResetEndsEveryWatch(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 5})
	e.store.Put("a", "1") // 6, not committed: in the hub's tail
	live := e.open(t, key("a"), 0)
	catching := e.open(t, prefix(""), 2) // read the db through 5 in Open
	e.store.Reset(100, 90)

	if got := revs(until(t, live, watch.KindEnd)); got != "end(reset,7)" {
		t.Errorf("live watch: %s", got)
	}
	// It had 2..5 from the db; the hub ended it before it went live.
	if got := revs(until(t, catching, watch.KindEnd)); got != "2 3 4 5 end(reset,6)" {
		t.Errorf("catching-up watch: %s", got)
	}
	// The new state's history serves resumes from after 90.
	if _, err := e.tryOpen(key("a"), 7); !errors.Is(err, messages.ErrCompacted) {
		t.Errorf("resume below the new history: %v", err)
	}
	s := e.open(t, key("a"), 101)
	e.store.Put("a", "after")
	checkExact(t, e.store, events(t, s, 1), key("a"), 101, 101)
}

// StopWatches ends every watch and refuses new ones; so does stopping the
// actor.
func TestHubStopWatches(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 3})
	live := e.open(t, key("a"), 0)
	catching := e.open(t, prefix(""), 1)
	if _, err := e.system.Root.RequestFuture(e.hub, watch.StopWatches{}, 5e9).Result(); err != nil {
		t.Fatal(err)
	}
	if got := revs(until(t, live, watch.KindEnd)); got != "end(stopping,4)" {
		t.Errorf("live watch: %s", got)
	}
	if got := revs(until(t, catching, watch.KindEnd)); got != "1 2 3 end(stopping,4)" {
		t.Errorf("catching-up watch: %s", got)
	}
	if _, err := e.tryOpen(key("a"), 0); !errors.Is(err, messages.ErrStopped) {
		t.Errorf("open after StopWatches: %v", err)
	}

	e2 := newEnv(t, watch.HubConfig{})
	s := e2.open(t, key("a"), 0)
	e2.store.Put("a", "1")
	e2.barrier(t)
	if err := e2.system.Root.StopFuture(e2.hub).Wait(); err != nil {
		t.Fatal(err)
	}
	if got := revs(until(t, s, watch.KindEnd)); got != "1 end(stopping,2)" {
		t.Errorf("after the actor stopped: %s", got)
	}
}

// The watch count is bounded; a closed stream frees its place.
func TestHubMaxWatchers(t *testing.T) {
	e := newEnv(t, watch.HubConfig{MaxWatchers: 2})
	a := e.open(t, key("a"), 0)
	e.open(t, key("b"), 0)
	if _, err := e.tryOpen(key("c"), 0); !errors.Is(err, watch.ErrTooManyWatchers) {
		t.Fatalf("third watch: %v", err)
	}
	a.Close()
	a.Close() // twice is harmless
	if _, err := e.tryOpen(key("c"), 0); err != nil {
		t.Fatalf("after a close: %v", err)
	}
}

// Close unregisters the watcher: the gauge counts only open watches.
func TestHubCloseUnregisters(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	a, b := e.open(t, key("a"), 0), e.open(t, prefix(""), 0)
	e.waitWatchers(t, 2)
	a.Close()
	b.Close()
	e.waitWatchers(t, 0)
	// Events for a closed watcher go nowhere and hold nothing up.
	e.store.Put("a", "1")
	checkExact(t, e.store, events(t, e.open(t, key("a"), 1), 1), key("a"), 1, 1)
}
