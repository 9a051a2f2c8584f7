package watch_test

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftkv/node/internal/watchtest"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/watch"
)

// A hub that panics while it hands a revision out is rebuilt (the member's
// supervision restarts it with its Successor): every watch ends with the
// first revision its watcher was not given, and resumed there it gets every
// later event once, from the history and the new hub, which goes on with
// the kv actor's events.
func TestHubRebuiltAfterAPanic(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(system.Shutdown)
	st := watchtest.NewStore(system.Root, nil)
	for range 3 {
		st.Put("init", "x")
	}
	st.Commit()
	first := watch.NewHub(watch.HubConfig{Revision: 3, Metrics: metrics.New(prometheus.NewRegistry())})
	var panics atomic.Int32
	watch.SetBeforeDispatch(first, func() {
		if panics.Add(1) == 3 { // the third revision handed out: 6
			panic("injected")
		}
	})
	var cur *watch.Hub
	var made atomic.Int32
	props := actor.PropsFromProducer(func() actor.Actor {
		made.Add(1)
		if cur == nil {
			cur = first
		} else {
			cur = cur.Successor()
		}
		return cur
	}, actor.WithGuardian(actor.NewOneForOneStrategy(1, time.Minute, func(any) actor.Directive { return actor.RestartDirective })))
	pid, err := system.Root.SpawnNamed(props, "watch")
	if err != nil {
		t.Fatal(err)
	}
	st.SetHub(pid)
	open := func(f watch.Filter, start uint64) *watch.Stream {
		s, err := watch.Open(watch.StreamConfig{Root: system.Root, Hub: pid, History: st, Filter: f, Start: start})
		if err != nil {
			t.Fatalf("open %+v from %d: %v", f, start, err)
		}
		t.Cleanup(s.Close)
		return s
	}
	a, all := open(key("a"), 0), open(prefix(""), 0)
	for _, v := range []string{"1", "2", "3", "4", "5"} { // revisions 4 to 8
		st.Put("a", v)
	}
	// Not committed: a resume finds 6 to 8 in the new hub's tail only, 6
	// among them only if the new hub took again the events the old one
	// had in hand.
	// Revisions 4 and 5 reached both; the hub panicked before 6.
	if got := revs(until(t, a, watch.KindEnd)); got != "4 5 end(restarted,6)" {
		t.Fatalf("watch of a: %s", got)
	}
	if got := revs(until(t, all, watch.KindEnd)); got != "4 5 end(restarted,6)" {
		t.Fatalf("watch of everything: %s", got)
	}
	if made.Load() != 2 {
		t.Fatalf("%d hubs made, want the first and one successor", made.Load())
	}
	resumed := open(key("a"), 6)
	st.Put("a", "after") // 9, from the new hub
	checkExact(t, st, events(t, resumed, 4), key("a"), 6, 9)
	st.Commit()
}
