package etcd_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/raftkv/node/internal/nodecluster"
	"github.com/raftkv/node/internal/testutil"
)

// TestWatchResumesAcrossRestart: a clientv3 watch on a prefix through one
// member's endpoint only, while that member is stopped (SIGTERM) and
// started again and the writes go on through the others: the watch channel
// gets every write exactly once, in order (clientv3 resumes from the
// revision after the last it got), and no error.
func TestWatchResumesAcrossRestart(t *testing.T) {
	c := nodecluster.Start(t, 3)
	watched := c.Members[2]
	wcli := newClient(t, watched.Endpoint())
	writer := newClient(t, c.Endpoints(c.Members[0], c.Members[1])...)

	start, err := writer.Put(ctx(t), "watch/start", "")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wch := wcli.Watch(wctx, "watch/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))

	var (
		mu     sync.Mutex
		events []*clientv3.Event
		errs   []error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range wch {
			mu.Lock()
			if err := r.Err(); err != nil {
				errs = append(errs, err)
			}
			events = append(events, r.Events...)
			mu.Unlock()
		}
	}()
	got := func() int { mu.Lock(); defer mu.Unlock(); return len(events) }
	waitEvents := func(n int, what string) {
		t.Helper()
		testutil.Eventually(t, 60*time.Second, what, func() error {
			if g := got(); g < n {
				return fmt.Errorf("%d events of %d", g, n)
			}
			return nil
		})
	}

	var revs []int64
	put := func(i int) {
		t.Helper()
		r, err := writer.Put(ctx(t), "watch/"+strconv.Itoa(i), strconv.Itoa(i))
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
		revs = append(revs, r.Header.Revision)
	}
	const phase = 15
	for i := range phase {
		put(i)
	}
	waitEvents(phase, "the watch streaming before the stop")
	c.Stop(watched)
	for i := phase; i < 2*phase; i++ {
		put(i)
	}
	c.Restart(watched)
	for i := 2 * phase; i < 3*phase; i++ {
		put(i)
	}
	// A last write, and every event up to it is in.
	put(3 * phase)
	waitEvents(3*phase+1, "every write through the watch")
	// Nothing more comes: a write after all, through the restarted
	// member, is the next event.
	put(3*phase + 1)
	waitEvents(3*phase+2, "the write after")
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	for _, err := range errs {
		t.Errorf("watch error: %v", err)
	}
	if len(events) != 3*phase+2 {
		t.Errorf("%d events, want %d", len(events), 3*phase+2)
	}
	for i, ev := range events {
		if i >= len(revs) {
			break
		}
		if ev.Type != mvccpb.PUT || string(ev.Kv.Key) != "watch/"+strconv.Itoa(i) || string(ev.Kv.Value) != strconv.Itoa(i) || ev.Kv.ModRevision != revs[i] {
			t.Errorf("event %d: %s %q=%q at %d, want PUT watch/%d at %d", i, ev.Type, ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision, i, revs[i])
		}
	}
}

// TestWatchFromRevisionOfEmptyRange is what concurrency.Election.Observe
// does when nobody campaigns yet: a Get of an empty prefix, then a watch
// from that Get's header revision, then two puts. The first event must be
// the first put (so an observer names the first leader, not the second).
func TestWatchFromRevisionOfEmptyRange(t *testing.T) {
	c := nodecluster.Start(t, 3)
	cli := newClient(t, c.Endpoints(c.Members[2])...)
	writer := newClient(t, c.Endpoints(c.Members[0])...)
	for round := range 20 {
		pfx := fmt.Sprintf("empty/%d/", round)
		g, err := cli.Get(ctx(t), pfx, clientv3.WithFirstCreate()...)
		if err != nil || len(g.Kvs) != 0 {
			t.Fatalf("Get of an empty prefix: %+v %v", g, err)
		}
		wctx, cancel := context.WithCancel(context.Background())
		wch := cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(g.Header.Revision))
		first, err := writer.Put(ctx(t), pfx+"b-first", "1")
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if _, err := writer.Put(ctx(t), pfx+"a-second", "2"); err != nil {
			cancel()
			t.Fatal(err)
		}
		var evs []*clientv3.Event
		timeout := time.After(opTimeout)
		for len(evs) < 2 {
			select {
			case r, ok := <-wch:
				if !ok || r.Err() != nil {
					cancel()
					t.Fatalf("round %d: the watch ended: %v", round, r.Err())
				}
				evs = append(evs, r.Events...)
			case <-timeout:
				cancel()
				t.Fatalf("round %d: %d events after %v", round, len(evs), opTimeout)
			}
		}
		cancel()
		if string(evs[0].Kv.Key) != pfx+"b-first" || evs[0].Kv.ModRevision != first.Header.Revision || string(evs[1].Kv.Key) != pfx+"a-second" {
			t.Fatalf("round %d: watch from revision %d (the empty Get's) gave %s@%d then %s@%d; want %sb-first@%d first",
				round, g.Header.Revision, evs[0].Kv.Key, evs[0].Kv.ModRevision, evs[1].Kv.Key, evs[1].Kv.ModRevision, pfx, first.Header.Revision)
		}
	}
}

// TestRangeRevisionMatchesData: under writes through other members, a
// linearizable Get's header revision is the revision of the data it
// returns: the same Get at that revision (WithRev) answers the same keys.
// Observe, Mutex and STM start watches from a Get's header revision, and
// a header ahead of the data would make them miss an event.
func TestRangeRevisionMatchesData(t *testing.T) {
	c := nodecluster.Start(t, 3)
	reader := newClient(t, c.Endpoints(c.Members[2])...)
	writer := newClient(t, c.Endpoints(c.Members[0], c.Members[1])...)
	wctx, stop := context.WithCancel(context.Background())
	writes := make(chan error, 1)
	go func() {
		defer close(writes)
		for i := 0; wctx.Err() == nil; i++ {
			pctx, cancel := context.WithTimeout(wctx, opTimeout)
			_, err := writer.Put(pctx, fmt.Sprintf("rr/%d/%d", i/10, i%10), "v")
			cancel()
			if err != nil && wctx.Err() == nil {
				writes <- err
				return
			}
		}
	}()
	defer func() {
		stop()
		for err := range writes {
			t.Errorf("writer: %v", err)
		}
	}()
	for i := range 200 {
		pfx := fmt.Sprintf("rr/%d/", i/20)
		a, err := reader.Get(ctx(t), pfx, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		b, err := reader.Get(ctx(t), pfx, clientv3.WithPrefix(), clientv3.WithRev(a.Header.Revision))
		if err != nil {
			t.Fatal(err)
		}
		ka, kb := keyRevs(a.Kvs), keyRevs(b.Kvs)
		if ka != kb {
			t.Fatalf("Get %s answered at header revision %d: %s; Get at revision %d: %s", pfx, a.Header.Revision, ka, a.Header.Revision, kb)
		}
		for _, kv := range a.Kvs {
			if kv.ModRevision > a.Header.Revision {
				t.Fatalf("Get %s: %s modified at %d, after the header's revision %d", pfx, kv.Key, kv.ModRevision, a.Header.Revision)
			}
		}
	}
}

func keyRevs(kvs []*mvccpb.KeyValue) string {
	var b []byte
	for _, kv := range kvs {
		b = fmt.Appendf(b, "%s@%d ", kv.Key, kv.ModRevision)
	}
	return string(b)
}
