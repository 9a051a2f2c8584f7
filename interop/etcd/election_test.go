package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/raftkv/node/internal/nodecluster"
	"github.com/raftkv/node/internal/testutil"
)

// TestElectionLeaderKilled: a concurrency.Election whose first leader is
// another process (a helper) killed -9, then whose next leader resigns
// while the raft leader is down. Observe reports the leaders one at a
// time and in order, Leader names the one that won, and no two
// candidates lead at once.
func TestElectionLeaderKilled(t *testing.T) {
	c := nodecluster.Start(t, 3)
	const name = "election/e"

	// The observer, on a client of its own.
	obsCli := newClient(t, c.Endpoints()...)
	obsSess, err := concurrency.NewSession(obsCli, concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	defer obsSess.Close()
	obsCtx, stopObs := context.WithCancel(context.Background())
	defer stopObs()
	var (
		mu       sync.Mutex
		observed []string // "key=value" of each leader Observe reported
	)
	obsDone := make(chan struct{})
	obsCh := concurrency.NewElection(obsSess, name).Observe(obsCtx)
	go func() {
		defer close(obsDone)
		for r := range obsCh {
			if len(r.Kvs) == 1 {
				mu.Lock()
				observed = append(observed, string(r.Kvs[0].Key)+"="+string(r.Kvs[0].Value))
				mu.Unlock()
			}
		}
	}()
	leadersSeen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Compact(slices.Clone(observed))
	}

	helper := startHelper(t, "campaign", name, c.Endpoints(c.Members[0]))
	helperKey, _ := waitHeld(t, helper)

	// Two candidates in this process, b campaigning before c.
	type candidate struct {
		name    string
		cli     *clientv3.Client
		s       *concurrency.Session
		e       *concurrency.Election
		elected chan error
	}
	var overlap atomic.Bool
	cands := make([]*candidate, 2)
	for i, cn := range []string{"b", "c"} {
		cli := newClient(t, c.Endpoints()...)
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cand := &candidate{name: cn, cli: cli, s: s, e: concurrency.NewElection(s, name), elected: make(chan error, 1)}
		cands[i] = cand
		cctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		go func() {
			err := cand.e.Campaign(cctx, "proposal-"+cand.name)
			if err == nil {
				// Leading, its key is the first created of the election:
				// every earlier candidate's key is gone.
				gctx, gcancel := context.WithTimeout(context.Background(), opTimeout)
				r, gerr := cli.Get(gctx, name+"/", clientv3.WithFirstCreate()...)
				gcancel()
				if gerr == nil && (len(r.Kvs) != 1 || string(r.Kvs[0].Key) != cand.e.Key()) {
					overlap.Store(true)
					t.Errorf("candidate %s elected while %+v is the first key", cand.name, r.Kvs)
				}
			}
			cand.elected <- err
		}()
		// Wait until its key is in, so that the order is b then c.
		testutil.Eventually(t, opTimeout, "candidate "+cn+" campaigning", func() error {
			r, err := cli.Get(ctx(t), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				return err
			}
			if r.Count != int64(i+2) {
				return fmt.Errorf("%d candidates", r.Count)
			}
			return nil
		})
	}
	b, cc := cands[0], cands[1]
	testutil.Eventually(t, opTimeout, "the observer seeing the helper lead", func() error {
		if got := leadersSeen(); len(got) != 1 || got[0] != helperKey+"=helper" {
			return fmt.Errorf("observed %q", got)
		}
		return nil
	})
	if r, err := b.e.Leader(ctx(t)); err != nil || string(r.Kvs[0].Value) != "helper" {
		t.Fatalf("Leader while the helper leads: %+v %v", r, err)
	}
	for _, cand := range cands {
		select {
		case err := <-cand.elected:
			t.Fatalf("candidate %s's Campaign returned (%v) while the helper leads", cand.name, err)
		default:
		}
	}

	if err := helper.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case err := <-b.elected:
		if err != nil {
			t.Fatalf("candidate b's Campaign: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("candidate b not elected 60 s after the helper was killed")
	}
	t.Logf("b elected %v after the helper was killed (its TTL %ds)", time.Since(killed).Round(time.Millisecond), helperTTL)
	if r, err := cc.e.Leader(ctx(t)); err != nil || string(r.Kvs[0].Value) != "proposal-b" {
		t.Errorf("Leader after the helper died: %+v %v, want proposal-b", r, err)
	}

	// The raft leader dies; b resigns through the members left.
	lead := c.Leader()
	c.Kill(lead)
	bKey := b.e.Key() // Resign forgets it
	testutil.Eventually(t, 30*time.Second, "b resigning with the raft leader down", func() error {
		return b.e.Resign(ctx(t))
	})
	select {
	case err := <-cc.elected:
		if err != nil {
			t.Fatalf("candidate c's Campaign: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("candidate c not elected 60 s after b resigned")
	}
	c.Restart(lead)
	c.Leader(c.Members...)
	testutil.Eventually(t, 30*time.Second, "the observer seeing every leader", func() error {
		got := leadersSeen()
		want := []string{helperKey + "=helper", bKey + "=proposal-b", cc.e.Key() + "=proposal-c"}
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("observed leaders %q, want %q", got, want)
		}
		if len(got) < len(want) {
			return errors.New("not yet")
		}
		return nil
	})
	if err := cc.e.Resign(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if overlap.Load() {
		t.Error("two leaders at once")
	}
	stopObs()
	<-obsDone
}
