package faults

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNode is an in-process stand-in for a member's client API: a map under
// a mutex, so every request takes effect atomically inside its own HTTP
// exchange and the service is linearizable by construction, unless stale
// is set: then GET answers from the state before the key's last write.
type fakeNode struct {
	stale bool
	// answer, when set, picks the answer of the n-th write (from 1): 0
	// applies it normally; any other status is sent, and the write is
	// applied only if apply says so.
	answer func(n int64) (status int, retryAfter, apply bool)
	// hang, when not nil, makes every request wait until the client gives
	// up or the channel is closed.
	hang chan struct{}

	writes atomic.Int64
	hits   atomic.Int64

	mu   sync.Mutex
	cur  map[string]string
	prev map[string]string // the map before each key's last write
}

func newFakeNode() *fakeNode {
	return &fakeNode{cur: map[string]string{}, prev: map[string]string{}}
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	// The body is read first: the server notices a client that went away
	// (and cancels r.Context()) only once the body has been consumed.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f.hang != nil {
		select {
		case <-r.Context().Done():
		case <-f.hang:
		}
		return
	}
	key, found := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if !found || key == "" {
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodGet {
		from := f.cur
		if f.stale {
			from = f.prev
		}
		v, ok := from[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, v)
		return
	}
	status, retryAfter, apply := 0, false, true
	if f.answer != nil {
		status, retryAfter, apply = f.answer(f.writes.Add(1))
	}
	if apply {
		if old, ok := f.cur[key]; ok {
			f.prev[key] = old
		} else {
			delete(f.prev, key)
		}
		switch r.Method {
		case http.MethodPut:
			f.cur[key] = string(body)
		case http.MethodDelete:
			delete(f.cur, key)
		}
	}
	if status != 0 {
		if retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, "injected", status)
		return
	}
	_, _ = io.WriteString(w, `{"index":1}`)
}

// serve starts n HTTP endpoints in front of the same fake, as the members
// of one cluster would be.
func serve(t *testing.T, f *fakeNode, n int) []string {
	t.Helper()
	var urls []string
	for range n {
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	return urls
}

// countingHandler counts requests per endpoint behind one fake.
type countingHandler struct {
	next http.Handler
	n    atomic.Int64
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.next.ServeHTTP(w, r)
}

func TestWorkersAgainstLinearizableFake(t *testing.T) {
	f := newFakeNode()
	var counters []*countingHandler
	var endpoints []string
	for range 3 {
		c := &countingHandler{next: f}
		srv := httptest.NewServer(c)
		t.Cleanup(srv.Close)
		counters = append(counters, c)
		endpoints = append(endpoints, srv.URL)
	}
	rec := NewRecorder()
	w := Workers{Endpoints: endpoints, Clients: 4, OpsPerClient: 150, Rec: rec, Seed: 1, Timeout: 5 * time.Second}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}

	ops := rec.Ops()
	if len(ops) != 600 {
		t.Fatalf("%d operations, want 4×150", len(ops))
	}
	kinds := map[OpKind]int{}
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Status != StatusOK {
			t.Fatalf("%+v not ok against a healthy fake", op)
		}
		kinds[op.Input.Kind]++
		if op.Input.Kind == OpPut {
			if seen[op.Input.Value] {
				t.Fatalf("value %q put twice", op.Input.Value)
			}
			seen[op.Input.Value] = true
		}
	}
	// 50/40/10 over 600 draws: far from the edges of these bounds.
	if kinds[OpPut] < 240 || kinds[OpPut] > 360 || kinds[OpGet] < 180 || kinds[OpGet] > 300 || kinds[OpDelete] < 30 || kinds[OpDelete] > 100 {
		t.Errorf("operation mix %v, want about 50/40/10", kinds)
	}
	for i, c := range counters {
		if c.n.Load() == 0 {
			t.Errorf("endpoint %d never used", i)
		}
	}
	// Conflicts are what make the check meaningful: with 8 keys and 600
	// operations some reads must have found a value.
	if found := countFoundReads(ops); found == 0 {
		t.Fatalf("no read found a value; the history exercises nothing")
	}

	html := filepath.Join(t.TempDir(), "ok.html")
	if res, err := rec.Check(time.Minute, html); err != nil {
		t.Fatalf("linearizable fake judged %v: %v", res.Outcome, err)
	}

	// The fake is linearizable, so every last word must be in its final map.
	final := map[string]FinalRead{}
	for _, k := range w.KeyNames() {
		v, ok := f.cur[k]
		final[k] = FinalRead{Value: v, Found: ok}
	}
	if losses := LostWrites(rec, final); len(losses) != 0 {
		t.Fatalf("losses against a correct fake: %v", losses)
	}
}

func countFoundReads(ops []Op) int {
	n := 0
	for _, op := range ops {
		if op.Input.Kind == OpGet && op.Output.Found {
			n++
		}
	}
	return n
}

// TestWorkersAgainstStaleFake uses one client, so its history is a function
// of the seed alone and the violation appears on every run.
func TestWorkersAgainstStaleFake(t *testing.T) {
	f := newFakeNode()
	f.stale = true
	rec := NewRecorder()
	w := Workers{Endpoints: serve(t, f, 2), Clients: 1, OpsPerClient: 200, Rec: rec, Seed: 7}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(t.TempDir(), "stale.html")
	_, err := rec.Check(time.Minute, html)
	if !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("stale fake judged: %v", err)
	}
	if info, statErr := os.Stat(html); statErr != nil || info.Size() == 0 {
		t.Fatalf("visualization not written: %v", statErr)
	}
}

// TestWorkersFailuresAndUnknowns makes the fake refuse some writes with a
// 503 + Retry-After (not applied) and answer others with a 504 or a bare
// 503 after applying them: the recorder must sort these into failed and
// unknown so that the correct history still checks out.
func TestWorkersFailuresAndUnknowns(t *testing.T) {
	f := newFakeNode()
	f.answer = func(n int64) (int, bool, bool) {
		switch n % 4 {
		case 1:
			return http.StatusServiceUnavailable, true, false
		case 2:
			return http.StatusGatewayTimeout, false, true
		case 3:
			return http.StatusServiceUnavailable, false, true
		}
		return 0, false, true
	}
	rec := NewRecorder()
	w := Workers{Endpoints: serve(t, f, 1), Clients: 3, OpsPerClient: 60, Rec: rec, Seed: 3}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, op := range rec.Ops() {
		if !op.Input.Kind.isWrite() {
			continue
		}
		var want Status
		switch {
		case strings.HasPrefix(op.Cause, "503 ") && op.Status == StatusFailed:
			want = StatusFailed // must be the Retry-After kind; checked below
		case strings.HasPrefix(op.Cause, "503 "), strings.HasPrefix(op.Cause, "504 "):
			want = StatusUnknown
		case op.Cause == "":
			want = StatusOK
		default:
			t.Fatalf("unexpected cause %q", op.Cause)
		}
		if op.Status != want {
			t.Errorf("%+v: status %v, want %v", op, op.Status, want)
		}
	}
	counts := rec.Counts()
	if counts[StatusFailed] == 0 || counts[StatusUnknown] == 0 {
		t.Fatalf("counts %v: the fake's failures were not all seen", counts)
	}
	// A bare 503 is applied by this fake; were it taken as failed, reads
	// of its value would make the history illegal.
	if _, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "x.html")); err != nil {
		t.Fatal(err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name       string
		kind       OpKind
		status     int
		retryAfter bool
		body       string
		readErr    error
		wantStatus Status
		wantOut    Output
	}{
		{"get found", OpGet, 200, false, "v", nil, StatusOK, Output{Value: "v", Found: true}},
		{"get empty value", OpGet, 200, false, "", nil, StatusOK, Output{Value: "", Found: true}},
		{"get absent", OpGet, 404, false, "key not found", nil, StatusOK, Output{}},
		{"get 503", OpGet, 503, true, "no leader", nil, StatusFailed, Output{}},
		{"get 504", OpGet, 504, false, "timed out", nil, StatusFailed, Output{}},
		{"get body cut", OpGet, 200, false, "v", io.ErrUnexpectedEOF, StatusFailed, Output{}},
		{"put ok", OpPut, 200, false, `{"index":3}`, nil, StatusOK, Output{}},
		{"put no leader", OpPut, 503, true, "no leader", nil, StatusFailed, Output{}},
		{"put node stopping", OpPut, 503, false, "node is stopping", nil, StatusUnknown, Output{}},
		{"put timed out", OpPut, 504, false, "timed out", nil, StatusUnknown, Output{}},
		{"put 500", OpPut, 500, false, "internal", nil, StatusUnknown, Output{}},
		{"put body cut", OpPut, 200, false, "", io.ErrUnexpectedEOF, StatusUnknown, Output{}},
		{"delete ok", OpDelete, 200, false, `{"index":4}`, nil, StatusOK, Output{}},
		{"delete 404 is not a read", OpDelete, 404, false, "", nil, StatusUnknown, Output{}},
		{"delete dropped", OpDelete, 503, true, "dropped", nil, StatusFailed, Output{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.retryAfter {
				resp.Header.Set("Retry-After", "1")
			}
			out, st, err := classify(tc.kind, resp, []byte(tc.body), tc.readErr)
			if st != tc.wantStatus || out != tc.wantOut {
				t.Fatalf("classify = %+v, %v, want %+v, %v", out, st, tc.wantOut, tc.wantStatus)
			}
			if (st == StatusOK) != (err == nil) {
				t.Fatalf("err = %v with status %v", err, st)
			}
		})
	}
}

// TestWorkersTimeout: a member that never answers turns writes into unknown
// operations and reads into failed ones, within the per-operation timeout.
func TestWorkersTimeout(t *testing.T) {
	f := newFakeNode()
	f.hang = make(chan struct{})
	endpoints := serve(t, f, 1)
	// Registered after the server's Close, so it runs first and Close does
	// not wait for a handler forever should a disconnect go unnoticed.
	t.Cleanup(func() { close(f.hang) })
	rec := NewRecorder()
	w := Workers{Endpoints: endpoints, Clients: 2, OpsPerClient: 5, Rec: rec, Timeout: 20 * time.Millisecond}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	ops := rec.Ops()
	if len(ops) != 10 {
		t.Fatalf("%d operations, want 10", len(ops))
	}
	for _, op := range ops {
		if op.Status != failureStatus(op.Input.Kind) || op.Cause == "" {
			t.Errorf("%+v: want %v with a cause", op, failureStatus(op.Input.Kind))
		}
		if op.Return-op.Call < w.Timeout {
			t.Errorf("%+v gave up before the timeout", op)
		}
	}
}

// TestWorkersRefusedConnection: a member that is down refuses the
// connection, so no request reached it and every write is failed, not
// unknown; a member that accepts and then hangs is covered by
// TestWorkersTimeout.
func TestWorkersRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil { // nothing listens there now
		t.Fatal(err)
	}
	rec := NewRecorder()
	w := Workers{Endpoints: []string{"http://" + addr}, Clients: 2, OpsPerClient: 20, Rec: rec, Seed: 5}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var writes int
	for _, op := range rec.Ops() {
		if op.Status != StatusFailed || !strings.Contains(op.Cause, "refused") {
			t.Errorf("%+v: want failed, refused", op)
		}
		if op.Input.Kind.isWrite() {
			writes++
		}
	}
	if writes == 0 {
		t.Fatal("the seed drew no write")
	}
}

// TestWorkersStopWithContext runs without an operation limit: Run must
// return once the context ends, with every client stopped (goleak checks
// that no goroutine is left).
func TestWorkersStopWithContext(t *testing.T) {
	f := newFakeNode()
	rec := NewRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	w := Workers{Endpoints: serve(t, f, 2), Rec: rec, Seed: 5}
	go func() { done <- w.Run(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for rec.Len() < 50 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("only %d operations recorded", rec.Len())
		}
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	n := rec.Len()
	if got := f.hits.Load(); got != int64(n) {
		t.Fatalf("fake served %d requests, recorder has %d: an operation is missing or still running", got, n)
	}
}

func TestWorkersRepeatable(t *testing.T) {
	inputs := func(seed uint64) []Input {
		rec := NewRecorder()
		w := Workers{Endpoints: serve(t, newFakeNode(), 3), Clients: 1, OpsPerClient: 50, Rec: rec, Seed: seed}
		if err := w.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		var in []Input
		for _, op := range rec.Ops() {
			in = append(in, op.Input)
		}
		return in
	}
	a, b, c := inputs(11), inputs(11), inputs(12)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different runs:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same run: %v", a)
	}
}

func TestWorkersConfig(t *testing.T) {
	cases := []struct {
		name string
		w    Workers
	}{
		{"no endpoints", Workers{Rec: NewRecorder()}},
		{"no recorder", Workers{Endpoints: []string{"http://127.0.0.1:1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.w.Run(t.Context()); !errors.Is(err, ErrWorkersConfig) {
				t.Fatalf("err = %v, want ErrWorkersConfig", err)
			}
		})
	}
	keys := Workers{Keys: 3, KeyPrefix: "x"}.KeyNames()
	if !slices.Equal(keys, []string{"x0", "x1", "x2"}) {
		t.Fatalf("KeyNames = %v", keys)
	}
	if n := len(Workers{}.KeyNames()); n != DefaultKeys {
		t.Fatalf("default key space %d, want %d", n, DefaultKeys)
	}
}
