package watch_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// Watchers that catch up from the same revisions read the db once between
// them and share each revision's events; a compaction the hub heard of is
// refused from memory as the db refuses it.
func TestSharedHistory(t *testing.T) {
	var shared *watch.SharedHistory
	e := newEnvHook(t, watch.HubConfig{}, func(st *watchtest.Store, cfg *watch.HubConfig) {
		shared = watch.NewSharedHistory(st)
		cfg.History = shared
	})
	var reads atomic.Int32
	e.store.AfterRead(func(uint64) { reads.Add(1) })
	for range 20 {
		e.store.Put("k", "v")
	}
	e.store.Commit()
	e.barrier(t)
	open := func(start uint64) *watch.Stream {
		s, err := watch.Open(watch.StreamConfig{Root: e.system.Root, Hub: e.hub, History: shared, Filter: watch.Filter{Key: "k"}, Start: start})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	first := events(t, open(5), 16)
	n := reads.Load()
	second := events(t, open(5), 16)
	if reads.Load() != n {
		t.Fatalf("the second watcher read the db again (%d reads, then %d)", n, reads.Load())
	}
	for i := range first {
		if first[i].Events != second[i].Events {
			t.Fatalf("revision %d: the watchers do not share its events", first[i].Revision)
		}
	}
	e.store.Compact(10)
	e.store.Put("k", "v")
	e.store.Commit() // tells the hub, and through it the shared history
	e.barrier(t)
	s, err := watch.Open(watch.StreamConfig{Root: e.system.Root, Hub: e.hub, History: shared, Filter: watch.Filter{Key: "k"}, Start: 5})
	if err == nil {
		t.Cleanup(s.Close)
		_, err = s.Next(t.Context(), nil)
	}
	var compacted *messages.CompactedError
	if !errors.As(err, &compacted) {
		t.Fatalf("a watch from a compacted revision: %v, want a CompactedError", err)
	}
}
