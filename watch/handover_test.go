package watch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// A watch from a past revision gets the db's history, in several reads,
// then the hub's tail (applied, not yet committed), then live events:
// each revision once.
func TestCatchUpThenTailThenLive(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	for i := range 700 { // several reads of the history
		e.store.Put(fmt.Sprintf("k%d", i%3), "v")
	}
	e.store.Commit()
	for range 5 {
		e.store.Put("k1", "tail")
	}
	s := e.open(t, prefix("k1"), 10)
	if s.Revision() != 705 {
		t.Fatalf("revision %d, want 705", s.Revision())
	}
	want := len(e.store.Events(10, 705, prefix("k1").Match))
	got := events(t, s, want)
	e.store.Put("k1", "live")
	got = append(got, events(t, s, 1)...)
	checkExact(t, e.store, got, prefix("k1"), 10, 706)
	if n := testutil.ToFloat64(e.m.Watch.CatchUpReads); n < 3 {
		t.Errorf("catch-up reads = %v, want several", n)
	}
}

// A commit between the stream's last read of the db and its going live
// takes events out of the hub's tail that the stream has not read: the
// hub sends it back to the db, and nothing is lost or repeated.
func TestCommitRacingTheHandOver(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 20})
	var reads atomic.Int32
	e.store.AfterRead(func(through uint64) {
		// The first two reads are each overtaken by an apply and a commit
		// the hub learns before the stream asks to go live.
		if reads.Add(1) <= 2 {
			e.store.Put("a", fmt.Sprint("raced after ", through))
			e.store.Put("b", "other")
			e.store.Commit()
			e.store.Put("a", "in the tail")
		}
	})
	s := e.open(t, prefix(""), 15)
	got := events(t, s, 6+3*2) // 15..20, then two races of three revisions
	e.store.AfterRead(nil)
	e.store.Put("a", "live")
	got = append(got, events(t, s, 1)...)
	checkExact(t, e.store, got, prefix(""), 15, e.store.Revision())
	if n := reads.Load(); n < 3 {
		t.Fatalf("%d reads of the db: the race did not send the stream back", n)
	}
}

// The db can be ahead of the hub (the kv actor commits before the hub has
// its events): a stream that read further than the hub's revision goes
// live there, and the hub's late events are not sent again.
func TestDBAheadOfTheHub(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 5})
	e.store.Hold()
	e.store.Put("a", "6")
	e.store.Put("a", "7")
	e.store.Commit()
	s := e.open(t, key("a"), 3)
	if s.Revision() != 5 {
		t.Fatalf("revision %d, want the hub's 5", s.Revision())
	}
	got := events(t, s, 2) // 6 and 7, from the db
	e.store.Release()
	e.store.Put("a", "8")
	got = append(got, events(t, s, 1)...)
	checkExact(t, e.store, got, key("a"), 3, 8)
}

// A start past the current revision (a client that read further through
// another member) gets only the revisions from it.
func TestStartInTheFuture(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 10})
	s := e.open(t, key("a"), 14)
	for range 6 {
		e.store.Put("a", "v")
	}
	checkExact(t, e.store, events(t, s, 3), key("a"), 14, 16)
}

// Without a start, a stream begins after the revision it reports.
func TestStartNow(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 10})
	e.store.Put("a", "11")
	e.barrier(t)
	s := e.open(t, key("a"), 0)
	if s.Revision() != 11 {
		t.Fatalf("revision %d, want 11", s.Revision())
	}
	e.store.Put("a", "12")
	checkExact(t, e.store, events(t, s, 1), key("a"), 12, 12)
}

// A start the history no longer holds is refused before anything is sent,
// saying where it starts, and leaves no watcher behind.
func TestCompactedStart(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 10})
	e.store.Compact(5)
	_, err := e.tryOpen(key("a"), 5)
	var ce *messages.CompactedError
	if !errors.As(err, &ce) || ce.Compacted != 5 || ce.Revision != 5 {
		t.Fatalf("open from 5: %v", err)
	}
	if _, err := e.tryOpen(key("a"), 6); err != nil {
		t.Fatalf("open from 6: %v", err)
	}
	// Without history at all, any past start is compacted.
	_, err = watch.Open(watch.StreamConfig{Root: e.system.Root, Hub: e.hub, Filter: key("a"), Start: 9})
	if !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("open without history: %v", err)
	}
	e.waitWatchers(t, 1) // the one opened from 6
}

// Next returns when the client leaves (its context ends).
func TestNextReturnsWhenTheContextEnds(t *testing.T) {
	e := newEnv(t, watch.HubConfig{})
	s := e.open(t, key("a"), 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.Next(ctx, nil)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("next: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("next did not return after the context ended")
	}
}

// Streams opened at random points while a writer applies and commits at
// random each get exactly the revisions from their start.
func TestHandOverUnderConcurrentWrites(t *testing.T) {
	e := newEnv(t, watch.HubConfig{Revision: 50, MaxQueuedEvents: 1 << 20, MaxQueuedBytes: 1 << 30})
	const writes = 1500
	keys := []string{"a", "ab", "b", "c"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < writes; i++ {
			var ops []watchtest.Op
			for range 1 + rng.IntN(3) {
				ops = append(ops, watchtest.Put(keys[rng.IntN(len(keys))], fmt.Sprint(i)))
			}
			if rng.IntN(4) == 0 {
				e.store.Apply(ops, []watchtest.Op{watchtest.Del(keys[rng.IntN(len(keys))])})
			} else {
				e.store.Apply(ops)
			}
			if rng.IntN(5) == 0 {
				e.store.Commit()
			}
		}
		e.store.Commit()
		close(stop)
	})
	filters := []watch.Filter{key("a"), prefix("a"), prefix(""), key("c")}
	type opened struct {
		s     *watch.Stream
		f     watch.Filter
		start uint64
	}
	var streams []opened
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 24; i++ {
		rev := e.store.Revision()
		start := 1 + uint64(rng.IntN(int(rev)))
		if i%4 == 3 {
			start = 0
		}
		f := filters[i%len(filters)]
		s := e.open(t, f, start)
		if start == 0 {
			start = s.Revision() + 1
		}
		streams = append(streams, opened{s, f, start})
	}
	<-stop
	wg.Wait()
	last := e.store.Revision()
	for _, o := range streams {
		want := len(groupRevs(e.store.Events(o.start, last, o.f.Match)))
		checkExact(t, e.store, events(t, o.s, want), o.f, o.start, last)
	}
}

func groupRevs(evs []messages.Event) map[uint64]bool {
	m := map[uint64]bool{}
	for _, e := range evs {
		m[e.Revision()] = true
	}
	return m
}
