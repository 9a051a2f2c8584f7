package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// preload writes every key of the key space once, so that the timed reads
// of get and mixed find them. It is not timed. The clients share the work
// over their own endpoints, and the first failure stops it: a missing key
// would make later reads fail for a reason the benchmark caused itself.
// It returns the highest index the nodes reported for these writes.
func preload(ctx context.Context, workers []*worker, keys uint64) (uint64, error) {
	var (
		next     atomic.Uint64
		maxIndex atomic.Uint64
		once     sync.Once
		firstErr error
		failed   atomic.Bool
		wg       sync.WaitGroup
	)
	for _, w := range workers {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= keys {
					return
				}
				idx, err := preloadKey(w.rt, w.spaceKeyRequest(i))
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%w: key %d via %s: %w", errPreload, i, w.base, err) })
					failed.Store(true)
					return
				}
				for cur := maxIndex.Load(); idx > cur && !maxIndex.CompareAndSwap(cur, idx); cur = maxIndex.Load() {
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%w: interrupted: %w", errPreload, err)
	}
	return maxIndex.Load(), nil
}

// preloadKey sends one preload PUT and returns the index of its answer, 0
// when the answer has none (the raftexample route answers 204).
func preloadKey(rt http.RoundTripper, req *http.Request) (uint64, error) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return 0, fmt.Errorf("%s: %s", resp.Status, oneLine(body))
	}
	var ack struct {
		Index uint64 `json:"index"`
	}
	if len(body) > 0 && json.Unmarshal(body, &ack) != nil {
		return 0, nil // acknowledged all the same; only the apply wait needs the index
	}
	return ack.Index, nil
}

// waitApplied waits until every endpoint has applied index, so that the
// first serializable read on a follower does not miss a key that its
// leader has acknowledged but the follower not yet applied. It gives up
// after timeout.
func waitApplied(ctx context.Context, hc *http.Client, endpoints []string, index uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, ep := range endpoints {
		for {
			st, err := fetchStatus(ctx, hc, ep)
			if err == nil && st.Applied >= index {
				break
			}
			select {
			case <-ctx.Done():
				if err == nil {
					err = fmt.Errorf("applied index %d", st.Applied)
				}
				return fmt.Errorf("%w: %s did not apply index %d in %s: %w", errPreload, ep, index, timeout, err)
			case <-tick.C:
			}
		}
	}
	return nil
}
