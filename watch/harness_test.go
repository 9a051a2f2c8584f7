package watch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/watch"
)

// env is a hub in an actor system of its own, fed by a watchtest.Store.
type env struct {
	system *actor.ActorSystem
	hub    *actor.PID
	store  *watchtest.Store
	m      *metrics.Node
}

func newEnv(t *testing.T, cfg watch.HubConfig) *env {
	t.Helper()
	return newEnvHook(t, cfg, nil)
}

// newEnvHook is newEnv with hook run on the hub's config once the store
// exists, before the hub is made.
func newEnvHook(t *testing.T, cfg watch.HubConfig, hook func(*watchtest.Store, *watch.HubConfig)) *env {
	t.Helper()
	system := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	t.Cleanup(system.Shutdown)
	e := &env{system: system, m: metrics.New(prometheus.NewRegistry())}
	// The revisions the hub starts at, made before it exists.
	e.store = watchtest.NewStore(system.Root, nil)
	for range cfg.Revision {
		e.store.Put("init", "x")
	}
	e.store.Commit()
	cfg.Metrics = e.m
	if hook != nil {
		hook(e.store, &cfg)
	}
	hub := watch.NewHub(cfg)
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return hub }), "watch")
	if err != nil {
		t.Fatal(err)
	}
	e.hub = pid
	e.store.SetHub(pid)
	return e
}

func (e *env) open(t *testing.T, f watch.Filter, start uint64) *watch.Stream {
	t.Helper()
	s, err := e.tryOpen(f, start)
	if err != nil {
		t.Fatalf("open %+v from %d: %v", f, start, err)
	}
	t.Cleanup(s.Close)
	return s
}

func (e *env) tryOpen(f watch.Filter, start uint64) (*watch.Stream, error) {
	return watch.Open(watch.StreamConfig{Root: e.system.Root, Hub: e.hub, History: e.store, Filter: f, Start: start})
}

// barrier returns once the hub handled everything sent to it before.
func (e *env) barrier(t *testing.T) {
	t.Helper()
	s, err := e.tryOpen(watch.Filter{Key: "barrier"}, 0)
	if err != nil && !errors.Is(err, messages.ErrStopped) {
		t.Fatal(err)
	}
	if s != nil {
		s.Close()
	}
}

// waitWatchers waits until the hub counts n watches open.
func (e *env) waitWatchers(t *testing.T, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := testutil.ToFloat64(e.m.Watch.Watchers)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("watchers = %v, want %v", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func key(k string) watch.Filter    { return watch.Filter{Key: k} }
func prefix(p string) watch.Filter { return watch.Filter{Key: p, Prefix: true} }

// next waits for the stream's next items.
func next(t *testing.T, s *watch.Stream) []watch.Item {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	items, err := s.Next(ctx, nil)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return items
}

// events reads the stream until it has n event items, skipping progress
// marks; an end fails the test.
func events(t *testing.T, s *watch.Stream, n int) []watch.Item {
	t.Helper()
	var got []watch.Item
	for len(got) < n {
		for _, it := range next(t, s) {
			switch it.Kind {
			case watch.KindEvents:
				got = append(got, it)
			case watch.KindEnd:
				t.Fatalf("stream ended (%s, resume %d) after %d of %d events", it.Reason, it.Revision, len(got), n)
			}
		}
	}
	if len(got) > n {
		t.Fatalf("got %d events, want %d: %s", len(got), n, revs(got))
	}
	return got
}

// until reads the stream until an item of kind k, and returns all it read.
func until(t *testing.T, s *watch.Stream, k watch.Kind) []watch.Item {
	t.Helper()
	var got []watch.Item
	for {
		items := next(t, s)
		got = append(got, items...)
		for _, it := range items {
			if it.Kind == k {
				return got
			}
		}
	}
}

func revs(items []watch.Item) string {
	var b strings.Builder
	for _, it := range items {
		switch it.Kind {
		case watch.KindEvents:
			fmt.Fprintf(&b, "%d ", it.Revision)
		case watch.KindProgress:
			fmt.Fprintf(&b, "p%d ", it.Revision)
		case watch.KindEnd:
			fmt.Fprintf(&b, "end(%s,%d) ", it.Reason, it.Revision)
		}
	}
	return strings.TrimSpace(b.String())
}

// wantJSON is the JSON a revision's events make for a watcher.
func wantJSON(rev uint64, evs []messages.Event) string {
	b := fmt.Appendf(nil, `{"revision":%d,"events":[`, rev)
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = e.AppendJSON(b)
	}
	return string(append(b, "]}"...))
}

// checkExact fails unless items are exactly the revisions from..to that f
// takes in the store, each whole, once, in order.
func checkExact(t *testing.T, st *watchtest.Store, items []watch.Item, f watch.Filter, from, to uint64) {
	t.Helper()
	evs := st.Events(from, to, f.Match)
	type wantItem struct {
		Revision uint64
		JSON     string
	}
	var want []wantItem
	for i := 0; i < len(evs); {
		j := i
		for j < len(evs) && evs[j].Revision() == evs[i].Revision() {
			j++
		}
		want = append(want, wantItem{evs[i].Revision(), wantJSON(evs[i].Revision(), evs[i:j])})
		i = j
	}
	var got []watch.Item
	for _, it := range items {
		if it.Kind == watch.KindEvents {
			got = append(got, it)
		}
	}
	if len(got) != len(want) {
		var w []watch.Item
		for _, it := range want {
			w = append(w, watch.Item{Kind: watch.KindEvents, Revision: it.Revision})
		}
		t.Fatalf("%+v from %d to %d: got revisions %s, want %s", f, from, to, revs(got), revs(w))
	}
	for i := range want {
		if got[i].Revision != want[i].Revision || string(got[i].JSON()) != want[i].JSON {
			t.Fatalf("%+v: item %d is %d %s, want %d %s", f, i, got[i].Revision, got[i].JSON(), want[i].Revision, want[i].JSON)
		}
	}
}
