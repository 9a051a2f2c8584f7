package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/raftkv/node/internal/nodecluster"
	"github.com/raftkv/node/internal/testutil"
)

// lockDeadline bounds one Lock: it must succeed or fail by then, never
// hang, whatever happens to the members.
const lockDeadline = 30 * time.Second

// hold is one time a worker held the mutex.
type hold struct {
	worker int
	token  int64 // the lock key's create revision: the fencing token
}

// TestMutexUnderLeaderKill: several sessions, each on a client of its own,
// contend for one concurrency.Mutex in a loop while the raft leader is
// killed -9 and later restarted. Never two holders at once (a holder count
// and each hold's fenced write, which succeeds only while the holder's key
// is the lock's), fencing tokens only go up, and every Lock returns, with
// the lock or an error, before its deadline.
func TestMutexUnderLeaderKill(t *testing.T) {
	c := nodecluster.Start(t, 3)
	const workers = 4

	var (
		holders  atomic.Int32
		overlaps atomic.Int32
		mu       sync.Mutex
		holds    []hold
		lockErrs []error
	)
	nHolds := func() int { mu.Lock(); defer mu.Unlock(); return len(holds) }
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for w := range workers {
		cli := newClient(t, c.Endpoints()...)
		wg.Go(func() {
			var s *concurrency.Session
			defer func() {
				if s != nil {
					_ = s.Close()
				}
			}()
			for runCtx.Err() == nil {
				if s == nil {
					var err error
					s, err = concurrency.NewSession(cli, concurrency.WithTTL(10), concurrency.WithContext(runCtx))
					if err != nil {
						if runCtx.Err() == nil {
							mu.Lock()
							lockErrs = append(lockErrs, fmt.Errorf("worker %d: NewSession: %w", w, err))
							mu.Unlock()
						}
						continue
					}
				}
				m := concurrency.NewMutex(s, "mutex/leader-kill")
				lctx, cancel := context.WithTimeout(context.Background(), lockDeadline)
				start := time.Now()
				err := m.Lock(lctx)
				cancel()
				if took := time.Since(start); took > lockDeadline+5*time.Second {
					overlaps.Add(1000) // reported below as a hang
					t.Errorf("worker %d: Lock took %v", w, took)
				}
				if err != nil {
					mu.Lock()
					lockErrs = append(lockErrs, fmt.Errorf("worker %d: Lock: %w", w, err))
					mu.Unlock()
					select {
					case <-s.Done():
						s = nil // the session is gone: a new one
					default:
					}
					continue
				}
				if holders.Add(1) != 1 {
					overlaps.Add(1)
				}
				token := m.Header().Revision
				gctx, cancel := context.WithTimeout(context.Background(), lockDeadline)
				if r, err := cli.Get(gctx, m.Key()); err == nil && len(r.Kvs) == 1 {
					token = r.Kvs[0].CreateRevision
				}
				cancel()
				// The fenced write: only while this key is the lock's.
				fctx, cancel := context.WithTimeout(context.Background(), lockDeadline)
				tr, err := cli.Txn(fctx).If(m.IsOwner()).Then(clientv3.OpPut("mutex/fenced", fmt.Sprint(token))).Commit()
				cancel()
				owner := err == nil && tr.Succeeded
				mu.Lock()
				holds = append(holds, hold{worker: w, token: token})
				if err == nil && !tr.Succeeded {
					lockErrs = append(lockErrs, fmt.Errorf("worker %d: holds the lock, but its key %s is not the lock's", w, m.Key()))
				}
				mu.Unlock()
				holders.Add(-1)
				uctx, cancel := context.WithTimeout(context.Background(), lockDeadline)
				if err := m.Unlock(uctx); err != nil && owner {
					// A failed unlock leaves the key until the session
					// ends: close it, and the others go on.
					_ = s.Close()
					s = nil
				}
				cancel()
			}
		})
	}

	waitHolds := func(n int, what string) {
		t.Helper()
		testutil.Eventually(t, 60*time.Second, what, func() error {
			if got := nHolds(); got < n {
				return fmt.Errorf("%d holds of %d", got, n)
			}
			return nil
		})
	}
	waitHolds(10, "holds before the kill")
	lead := c.Leader()
	c.Kill(lead)
	t.Logf("killed the leader, %s, after %d holds", lead.Name(), nHolds())
	waitHolds(nHolds()+15, "holds with the leader down")
	c.Restart(lead)
	c.Leader(c.Members...)
	t.Logf("restarted %s after %d holds", lead.Name(), nHolds())
	waitHolds(nHolds()+10, "holds after the restart")
	stop()
	wg.Wait()

	if n := overlaps.Load(); n != 0 {
		t.Errorf("two holders at once %d times (or a Lock hung)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(holds); i++ {
		if holds[i].token <= holds[i-1].token {
			t.Errorf("fencing tokens out of order: hold %d %+v after %+v", i, holds[i], holds[i-1])
		}
	}
	perWorker := map[int]int{}
	for _, h := range holds {
		perWorker[h.worker]++
	}
	t.Logf("%d holds %v, %d lock errors", len(holds), perWorker, len(lockErrs))
	for _, err := range lockErrs {
		// An error is allowed (the outcome under a dying leader), a
		// wrong ownership is not.
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			continue
		}
		t.Logf("lock error: %v", err)
	}
	for _, err := range lockErrs {
		if strings.Contains(err.Error(), "is not the lock's") {
			t.Error(err)
		}
	}
}

// TestMutexHolderKilled: a mutex held by another process (a helper, with a
// session of the minimum TTL) is refused to TryLock while the helper
// lives; once it is killed -9, Lock gets the mutex when the helper's
// session lease expires, and not before the kill.
func TestMutexHolderKilled(t *testing.T) {
	c := nodecluster.Start(t, 3)
	holder := startHelper(t, "lock", "mutex/holder", c.Endpoints())
	key, _ := waitHeld(t, holder)

	cli := newClient(t, c.Endpoints(c.Members[1])...)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, "mutex/holder")
	if err := m.TryLock(ctx(t)); !errors.Is(err, concurrency.ErrLocked) {
		t.Fatalf("TryLock while the helper holds %s: %v, want %v", key, err, concurrency.ErrLocked)
	}

	type result struct {
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	lctx, cancel := context.WithTimeout(context.Background(), lockDeadline)
	defer cancel()
	m2 := concurrency.NewMutex(s, "mutex/holder")
	go func() {
		err := m2.Lock(lctx)
		got <- result{err, time.Now()}
	}()
	// The waiter's key is there, behind the holder's.
	testutil.Eventually(t, opTimeout, "the waiter queued", func() error {
		r, err := cli.Get(ctx(t), "mutex/holder/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return err
		}
		if r.Count != 2 {
			return fmt.Errorf("%d keys", r.Count)
		}
		return nil
	})
	select {
	case r := <-got:
		t.Fatalf("Lock returned while the helper holds the mutex: %v", r.err)
	default:
	}
	if err := holder.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	r := <-got
	if r.err != nil {
		t.Fatalf("Lock after the holder was killed: %v", r.err)
	}
	t.Logf("the mutex passed %v after the kill (helper TTL %ds)", r.at.Sub(killed).Round(time.Millisecond), helperTTL)
	if gr, err := cli.Get(ctx(t), key); err != nil || len(gr.Kvs) != 0 {
		t.Errorf("the killed holder's key %s: %+v %v, want gone", key, gr, err)
	}
	if err := m2.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
}
