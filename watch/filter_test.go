package watch_test

import (
	"testing"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/watch"
)

func TestFilterMatch(t *testing.T) {
	for _, c := range []struct {
		f    watch.Filter
		key  string
		want bool
	}{
		{watch.Filter{Key: "a"}, "a", true},
		{watch.Filter{Key: "a"}, "ab", false},
		{watch.Filter{Key: "a", Prefix: true}, "ab", true},
		{watch.Filter{Key: "a", Prefix: true}, "b", false},
		{watch.Filter{Prefix: true}, "anything", true},
		{watch.Filter{Key: "b", End: "d"}, "a", false},
		{watch.Filter{Key: "b", End: "d"}, "b", true},
		{watch.Filter{Key: "b", End: "d"}, "c\xff", true},
		{watch.Filter{Key: "b", End: "d"}, "d", false},
		{watch.Filter{Key: "b", End: watch.RangeEndAll}, "a", false},
		{watch.Filter{Key: "b", End: watch.RangeEndAll}, "zzz", true},
	} {
		if got := c.f.Match(c.key); got != c.want {
			t.Errorf("%+v.Match(%q) = %v, want %v", c.f, c.key, got, c.want)
		}
	}
}

// A watch of a range that is neither a key nor a prefix gets the events of
// its keys, from the history and live, and only those.
func TestRangeWatch(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	e.store.Put("a", "1")
	e.store.Put("b", "2")
	e.store.Commit()
	f := watch.Filter{Key: "b", End: "d"}
	s := e.open(t, f, 1)
	e.store.Put("c", "3")
	e.store.Put("d", "4")
	e.store.Apply([]watchtest.Op{watchtest.Put("a", "5"), watchtest.Put("c", "6")})
	checkExact(t, e.store, events(t, s, 3), f, 1, 5)
}

// Progress gives a live watcher a mark now, and one catching up a mark
// once it goes live, each covering the revision it answers.
func TestProgressNow(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	e.store.Put("a", "1")
	e.store.Commit()
	e.store.Put("a", "2") // the tail
	live := e.open(t, key("b"), 0)
	past := e.open(t, key("a"), 1)
	e.barrier(t)
	rev, err := watch.Progress(e.system.Root, e.hub, 0, live, past)
	if err != nil || rev != 2 {
		t.Fatalf("progress: %d, %v", rev, err)
	}
	if got := revs(until(t, live, watch.KindProgress)); got != "p2" {
		t.Fatalf("live: %s", got)
	}
	if got := revs(until(t, past, watch.KindProgress)); got != "1 2 p2" {
		t.Fatalf("catching up: %s", got)
	}
	if live.Covered() != 2 || past.Covered() != 2 {
		t.Fatalf("covered %d and %d", live.Covered(), past.Covered())
	}
}
