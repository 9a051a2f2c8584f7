package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func mustRun(t *testing.T, cfg config) *result {
	t.Helper()
	res, err := runBench(context.Background(), cfg, zap.NewNop(), nil)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

// TestPutCountsAcknowledged: a put run reports as ops exactly the PUTs the
// server acknowledged, each to a key of its own with the full value.
func TestPutCountsAcknowledged(t *testing.T) {
	node := newFakeNode(t, nil)
	cfg := testConfig(cmdPut, 200, node.url)
	cfg.clients = 8
	res := mustRun(t, cfg)
	puts, acked, _, _ := node.counts()
	if res.writes.ok() != uint64(acked) || acked != 200 || puts != 200 {
		t.Fatalf("report: %d ops; server: %d PUTs, %d acknowledged; want 200", res.writes.ok(), puts, acked)
	}
	if res.reads != nil {
		t.Error("a put run should have no reads")
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.values) != 200 {
		t.Errorf("%d distinct keys written, want 200", len(node.values))
	}
	for k, v := range node.values {
		if len(v) != cfg.valSize || !strings.HasPrefix(k, "bench-t1-") || len(k) < cfg.keySize {
			t.Fatalf("key %q: %d-byte value", k, len(v))
		}
	}
	if res.writes.lat.count() != 200 {
		t.Errorf("%d latencies recorded, want 200", res.writes.lat.count())
	}
}

// TestErrorsAreNotOps: 503, 504, other statuses and failed connections are
// counted by kind and never as operations; only the server's 2xx are.
func TestErrorsAreNotOps(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.putStatus = func(n int) int { return []int{200, 503, 504, 500, 404}[n%5] }
	})
	refused := refusedEndpoint(t)

	t.Run("statuses", func(t *testing.T) {
		res := mustRun(t, testConfig(cmdPut, 500, node.url))
		_, acked, _, _ := node.counts()
		s := res.writes
		if s.ok() != uint64(acked) || s.ok() != 100 {
			t.Errorf("ops %d, server acknowledged %d, want 100", s.ok(), acked)
		}
		want := [numOutcomes]uint64{outcomeOK: 100, outcomeUnavailable: 100, outcomeTimeout: 100, outcomeStatus: 200}
		if wantStatus := map[int]uint64{500: 100, 404: 100}; s.n != want || !maps.Equal(s.byStatus, wantStatus) {
			t.Errorf("outcomes %v %v, want %v %v", s.n, s.byStatus, want, wantStatus)
		}
		if s.lat.count() != s.ok() {
			t.Errorf("%d latencies for %d ops: failures must not be timed", s.lat.count(), s.ok())
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		res := mustRun(t, testConfig(cmdPut, 20, refused))
		if s := res.writes; s.ok() != 0 || s.n[outcomeTransport] != 20 || s.errors() != 20 {
			t.Errorf("ops %d, errors %+v; want 20 transport errors", s.ok(), s.n)
		}
	})
	t.Run("one endpoint of two down", func(t *testing.T) {
		healthy := newFakeNode(t, nil)
		// Clients 0 and 2 use the refusing endpoint, 1 and 3 the node;
		// how the 100 requests fall between them is up to the scheduler.
		res := mustRun(t, testConfig(cmdPut, 100, refused, healthy.url))
		_, acked, _, _ := healthy.counts()
		s := res.writes
		if s.ok() != uint64(acked) || s.ok()+s.n[outcomeTransport] != 100 || s.requests() != 100 {
			t.Errorf("ops %d (server acknowledged %d), errors %+v", s.ok(), acked, s.n)
		}
	})
}

// TestClientTimeout: a node that never answers costs a transport error per
// request after --timeout, and the run still ends.
func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the handlers return
	cfg := testConfig(cmdPut, 4, srv.URL)
	cfg.timeout = 50 * time.Millisecond
	res := mustRun(t, cfg)
	if s := res.writes; s.ok() != 0 || s.n[outcomeTransport] != 4 {
		t.Errorf("ops %d, errors %+v; want 4 transport errors", s.ok(), s.n)
	}
	// The requests reached the node: the errors are timeouts, not refusals.
	for deadline := time.Now().Add(5 * time.Second); seen.Load() != 4; {
		if time.Now().After(deadline) {
			t.Fatalf("server saw %d requests, want 4", seen.Load())
		}
		runtime.Gosched()
	}
}

// TestGet covers the read path: preloaded keys are read back with the
// consistency asked for, a 404 for one of them is an error, and so is an
// answer that is not the value written.
func TestGet(t *testing.T) {
	tests := []struct {
		name         string
		configure    func(*fakeNode)
		serializable bool
		want         func(s *opStats) bool
	}{
		{"linearizable", nil, false, func(s *opStats) bool { return s.ok() == 300 && s.errors() == 0 }},
		{"serializable", nil, true, func(s *opStats) bool { return s.ok() == 300 && s.errors() == 0 }},
		{"404 is an error", func(f *fakeNode) { f.getStatus = func(int) int { return 404 } }, false,
			func(s *opStats) bool {
				return s.ok() == 0 && s.n[outcomeStatus] == 300 && s.byStatus[404] == 300
			}},
		{"503 and 504", func(f *fakeNode) { f.getStatus = func(n int) int { return []int{200, 503, 504}[n%3] } }, false,
			func(s *opStats) bool {
				return s.ok() == 100 && s.n[outcomeUnavailable] == 100 && s.n[outcomeTimeout] == 100
			}},
		{"wrong value", func(f *fakeNode) { f.getBody = []byte("short") }, false,
			func(s *opStats) bool { return s.ok() == 0 && s.n[outcomeBadReply] == 300 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := newFakeNode(t, tt.configure)
			cfg := testConfig(cmdGet, 300, node.url)
			cfg.serializable = tt.serializable
			res := mustRun(t, cfg)
			puts, acked, gets, served := node.counts()
			if puts != cfg.keys || acked != cfg.keys || gets != 300 {
				t.Errorf("server: %d PUTs (%d acked), %d GETs; want %d preloads and 300 reads", puts, acked, gets, cfg.keys)
			}
			if res.writes != nil {
				t.Error("a get run should have no writes")
			}
			if !tt.want(res.reads) {
				t.Errorf("reads: ok %d, errors %+v", res.reads.ok(), res.reads.n)
			}
			if tt.name != "wrong value" && res.reads.ok() != uint64(served) {
				t.Errorf("ops %d, server answered %d reads with 2xx", res.reads.ok(), served)
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			wantQuery := ""
			if tt.serializable {
				wantQuery = serializableQuery
			}
			if node.queries[wantQuery] != 300 {
				t.Errorf("queries %v, want 300 × %q", node.queries, wantQuery)
			}
		})
	}
}

// TestMixed: reads and writes are split by the ratio's coin and counted
// apart; writes overwrite the preloaded keys only.
func TestMixed(t *testing.T) {
	node := newFakeNode(t, nil)
	cfg := testConfig(cmdMixed, 400, node.url)
	cfg.readRatio = 0.75
	res := mustRun(t, cfg)
	puts, acked, gets, _ := node.counts()
	if res.reads.ok() != uint64(gets) || res.writes.ok() != uint64(acked-cfg.keys) || uint64(puts-cfg.keys) != res.writes.requests() {
		t.Errorf("report: %d reads, %d writes; server: %d GETs, %d PUTs (%d preloads)",
			res.reads.ok(), res.writes.ok(), gets, puts, cfg.keys)
	}
	if res.reads.ok()+res.writes.ok() != 400 || res.all().ok() != 400 {
		t.Errorf("%d + %d ops, want 400", res.reads.ok(), res.writes.ok())
	}
	// With 400 fair draws at 0.75 fewer than 200 reads is a 1-in-10^30 event.
	if res.reads.ok() < 200 || res.writes.ok() == 0 {
		t.Errorf("%d reads and %d writes for a read ratio of 0.75", res.reads.ok(), res.writes.ok())
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.values) != cfg.keys {
		t.Errorf("%d keys exist, want the %d of the key space", len(node.values), cfg.keys)
	}
}

// TestDuration: a --duration run ends by itself after the duration, and
// still counts only what was acknowledged.
func TestDuration(t *testing.T) {
	node := newFakeNode(t, nil)
	cfg := testConfig(cmdPut, 0, node.url)
	cfg.duration = 150 * time.Millisecond
	res := mustRun(t, cfg)
	_, acked, _, _ := node.counts()
	if res.elapsed < cfg.duration || res.writes.ok() == 0 || res.writes.ok() != uint64(acked) {
		t.Errorf("elapsed %v, ops %d, server acknowledged %d", res.elapsed, res.writes.ok(), acked)
	}
}

// TestCancelStopsRun: cancelling the context (an interrupt) ends a long run
// early, and the requests in flight are still counted.
func TestCancelStopsRun(t *testing.T) {
	started := make(chan struct{})
	var once atomic.Bool
	node := newFakeNode(t, func(f *fakeNode) {
		f.putStatus = func(n int) int {
			if n == 50 && once.CompareAndSwap(false, true) {
				close(started)
			}
			return 200
		}
	})
	cfg := testConfig(cmdPut, 0, node.url)
	cfg.duration = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type out struct {
		res *result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := runBench(ctx, cfg, zap.NewNop(), nil)
		done <- out{res, err}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not start")
	}
	cancel()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		_, acked, _, _ := node.counts()
		if o.res.writes.ok() != uint64(acked) || acked <= 50 {
			t.Errorf("ops %d, server acknowledged %d", o.res.writes.ok(), acked)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not stop after cancel")
	}
}

// TestPreloadFailure: a get run whose preload is refused stops before the
// timed phase with errPreload, and issues no reads.
func TestPreloadFailure(t *testing.T) {
	node := newFakeNode(t, func(f *fakeNode) {
		f.putStatus = func(n int) int { return []int{200, 200, 503}[n%3] }
	})
	_, err := runBench(context.Background(), testConfig(cmdGet, 10, node.url), zap.NewNop(), nil)
	if !errors.Is(err, errPreload) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want errPreload naming the 503", err)
	}
	if _, _, gets, _ := node.counts(); gets != 0 {
		t.Errorf("%d reads issued after a failed preload", gets)
	}
}

// TestWaitApplied: serializable reads wait until the endpoint has applied
// the preload, and the wait gives up with errPreload after the timeout.
func TestWaitApplied(t *testing.T) {
	var polls atomic.Uint64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Applied index grows by one per poll: 1, 2, 3, …
		_, _ = w.Write([]byte(`{"id":1,"leader":1,"applied_index":` +
			strconv.FormatUint(polls.Add(1), 10) + `}`))
	}))
	t.Cleanup(srv.Close)
	hc := &http.Client{Transport: newTransport(1, time.Second, nil)}
	defer hc.CloseIdleConnections()

	if err := waitApplied(context.Background(), hc, []string{srv.URL}, 3, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if polls.Load() != 3 {
		t.Errorf("%d polls, want 3: the wait must last until index 3 is applied", polls.Load())
	}
	err := waitApplied(context.Background(), hc, []string{srv.URL}, 100, 50*time.Millisecond)
	if !errors.Is(err, errPreload) {
		t.Errorf("err = %v, want errPreload after the timeout", err)
	}
}

// TestProgressBar: with a progress writer the run draws the bar and ends
// it with a newline showing the final counts.
func TestProgressBar(t *testing.T) {
	node := newFakeNode(t, nil)
	var buf bytes.Buffer
	res, err := runBench(context.Background(), testConfig(cmdPut, 25, node.url), zap.NewNop(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "\r[") || !strings.HasSuffix(out, "\n") ||
		!strings.Contains(out, "] 25 ok  0 errors") || res.writes.ok() != 25 {
		t.Errorf("progress output %q", out)
	}
	if !strings.Contains(out, "[##############################]") {
		t.Errorf("a finished --total run should show a full bar: %q", out)
	}
}

// TestSpread: client i is given endpoint i mod N, so that with --target
// spread every endpoint gets its share of the clients.
func TestSpread(t *testing.T) {
	cfg := testConfig(cmdPut, 1, "http://a:1", "http://b:2", "http://c:3")
	cfg.clients = 7
	ws, err := newWorkers(cfg, cfg.endpoints, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a:1", "b:2", "c:3", "a:1", "b:2", "c:3", "a:1"}
	for i, w := range ws {
		if w.base.Host != want[i] || w.id != i {
			t.Errorf("client %d (id %d) uses %s, want %s", i, w.id, w.base.Host, want[i])
		}
	}
}
