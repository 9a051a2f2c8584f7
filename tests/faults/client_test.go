package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/messages"
)

// fakeNode is an in-process stand-in for a member's client API: a map under
// a mutex, so every request takes effect atomically inside its own HTTP
// exchange and the service is linearizable by construction, unless stale
// is set (then GET answers from the state before the key's last write) or
// ignoreConditions is (then every conditional write applies, as if its
// condition held). It keeps revisions as the node does: a counter that
// each write that changes a key advances, the key's mod_revision its ETag.
type fakeNode struct {
	stale            bool
	ignoreConditions bool
	// answer, when set, picks the answer of the n-th write (from 1): 0
	// applies it normally; any other status is sent, and the write is
	// applied only if apply says so.
	answer func(n int64) (status int, retryAfter, apply bool)
	// hang, when not nil, makes every request wait until the client gives
	// up or the channel is closed.
	hang chan struct{}
	// badKeys, when set, is how the fake answers a write of a key no
	// write may carry (empty, or over messages.MaxKeyBytes); nil refuses
	// it with a short 400.
	badKeys *badKeyAnswer

	writes atomic.Int64
	hits   atomic.Int64

	mu   sync.Mutex
	rev  uint64
	cur  map[string]fakeEntry
	prev map[string]fakeEntry // each key before its last write
}

// fakeEntry is a key in the fake: absent when !present.
type fakeEntry struct {
	value   string
	rev     uint64
	present bool
}

func newFakeNode() *fakeNode {
	// The revision starts above 0, as a node's does after its first
	// entries (the configuration).
	return &fakeNode{rev: 3, cur: map[string]fakeEntry{}, prev: map[string]fakeEntry{}}
}

// fakeTxn is the transaction the workers send: one value compare, a put on
// success, a get on failure.
type fakeTxn struct {
	Compare []struct {
		Key, Target, Op, Value string
		KeyB64                 []byte `json:"key_b64"`
	}
	Success []struct {
		Op, Key, Value string
		KeyB64         []byte `json:"key_b64"`
	}
	Failure []struct{ Op, Key string }
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
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/v1/txn" {
		f.txn(w, body)
		return
	}
	key, found := strings.CutPrefix(r.URL.Path, "/v1/kv/")
	if found && r.Method != http.MethodGet && f.refuseKey(w, key, func() {
		if r.Method == http.MethodPut {
			f.set(key, fakeEntry{value: string(body), present: true})
		}
	}) {
		return
	}
	if !found || key == "" {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodGet {
		from := f.cur
		if f.stale {
			from = f.prev
		}
		e := from[key]
		if !e.present {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, e.rev))
		_, _ = io.WriteString(w, e.value)
		return
	}
	cur := f.cur[key]
	holds := true
	switch {
	case r.Header.Get("If-None-Match") == "*":
		holds = !cur.present
	case r.Header.Get("If-Match") != "":
		holds = cur.present && r.Header.Get("If-Match") == fmt.Sprintf(`"%d"`, cur.rev)
	}
	holds = holds || f.ignoreConditions
	status, retryAfter, apply := f.injected()
	var deleted int
	if apply && holds {
		switch r.Method {
		case http.MethodPut:
			f.set(key, fakeEntry{value: string(body), present: true})
		case http.MethodDelete:
			if cur.present {
				deleted = 1
				f.set(key, fakeEntry{})
			}
		}
	}
	if f.sendInjected(w, status, retryAfter) {
		return
	}
	switch {
	case !holds:
		if cur.present {
			w.Header().Set("ETag", fmt.Sprintf(`"%d"`, cur.rev))
		}
		w.WriteHeader(http.StatusPreconditionFailed)
		_, _ = fmt.Fprintf(w, `{"error":"precondition failed","revision":%d,"mod_revision":%d}`, f.rev, cur.rev)
	case r.Method == http.MethodDelete:
		_, _ = fmt.Fprintf(w, `{"index":%d,"revision":%d,"deleted":%d}`, f.rev, f.rev, deleted)
	default:
		_, _ = fmt.Fprintf(w, `{"index":%d,"revision":%d}`, f.rev, f.rev)
	}
}

// badKeyAnswer is an answer of the fake to a write of a key no write may
// carry: its status, whether the write applies, whether the answer's body
// echoes the key.
type badKeyAnswer struct {
	status int
	apply  bool
	echo   bool
}

// refuseKey answers a write of key, if no write may carry it, as badKeys
// says (calling apply if the write applies), or with a short 400.
func (f *fakeNode) refuseKey(w http.ResponseWriter, key string, apply func()) bool {
	if !refusedKey(key) {
		return false
	}
	a := badKeyAnswer{status: http.StatusBadRequest}
	if f.badKeys != nil {
		a = *f.badKeys
	}
	if a.apply {
		apply()
	}
	msg := "key too large or empty"
	if a.echo {
		msg += ": " + key
	}
	if a.status == http.StatusOK {
		_, _ = fmt.Fprintf(w, `{"index":%d,"revision":%d,"deleted":0}`, f.rev, f.rev)
		return true
	}
	http.Error(w, msg, a.status)
	return true
}

// injected draws the fate of the next write from answer.
func (f *fakeNode) injected() (status int, retryAfter, apply bool) {
	if f.answer == nil {
		return 0, false, true
	}
	return f.answer(f.writes.Add(1))
}

// sendInjected sends an injected failure, if there is one.
func (f *fakeNode) sendInjected(w http.ResponseWriter, status int, retryAfter bool) bool {
	if status == 0 {
		return false
	}
	if retryAfter {
		w.Header().Set("Retry-After", "1")
	}
	http.Error(w, "injected", status)
	return true
}

// set writes key at the next revision (an absent entry deletes it).
func (f *fakeNode) set(key string, e fakeEntry) {
	f.prev[key] = f.cur[key]
	f.rev++
	if e.present {
		e.rev = f.rev
		f.cur[key] = e
		return
	}
	delete(f.cur, key)
}

func (f *fakeNode) txn(w http.ResponseWriter, body []byte) {
	var t fakeTxn
	if err := json.Unmarshal(body, &t); err != nil || len(t.Compare) != 1 || len(t.Success) != 1 || len(t.Failure) != 1 {
		http.Error(w, fmt.Sprintf("not the workers' transaction: %v", err), http.StatusBadRequest)
		return
	}
	c, put := t.Compare[0], t.Success[0]
	if c.KeyB64 != nil {
		c.Key = string(c.KeyB64) // encoding/json decodes base64 into []byte
	}
	if put.KeyB64 != nil {
		put.Key = string(put.KeyB64)
	}
	if f.refuseKey(w, c.Key, func() { f.set(put.Key, fakeEntry{value: put.Value, present: true}) }) {
		return
	}
	cur := f.cur[c.Key]
	// A value compare on an absent key fails, as in etcd.
	holds := (cur.present && cur.value == c.Value) || f.ignoreConditions
	status, retryAfter, apply := f.injected()
	if apply && holds {
		f.set(put.Key, fakeEntry{value: put.Value, present: true})
	}
	if f.sendInjected(w, status, retryAfter) {
		return
	}
	if holds {
		_, _ = fmt.Fprintf(w, `{"index":%d,"revision":%d,"succeeded":true,"results":[{"op":"put"}]}`, f.rev, f.rev)
		return
	}
	kvs := "[]"
	if cur.present {
		kvs = fmt.Sprintf(`[{"key":%q,"value":%q,"mod_revision":%d}]`, c.Key, cur.value, cur.rev)
	}
	_, _ = fmt.Fprintf(w, `{"index":%d,"revision":%d,"succeeded":false,"results":[{"op":"get","kvs":%s,"count":%d}]}`,
		f.rev, f.rev, kvs, boolInt(cur.present))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// final is the fake's state as the final reads of a round would see it.
func (f *fakeNode) final(keys []string) map[string]FinalRead {
	f.mu.Lock()
	defer f.mu.Unlock()
	final := map[string]FinalRead{}
	for _, k := range keys {
		e := f.cur[k]
		final[k] = FinalRead{Value: e.value, Found: e.present, Rev: e.rev}
	}
	return final
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
		if op.Input.Kind.leavesPresent() {
			if seen[op.Input.Value] {
				t.Fatalf("value %q written twice", op.Input.Value)
			}
			seen[op.Input.Value] = true
		}
	}
	// 35/35/6/12/8/4 over 600 draws (a conditional delete of a key the
	// client has not seen is a get): far from the edges of these bounds.
	within := func(k OpKind, lo, hi int) bool { return kinds[k] >= lo && kinds[k] <= hi }
	if !within(OpPut, 160, 260) || !within(OpGet, 170, 290) || !within(OpDelete, 15, 60) ||
		!within(OpCAS, 40, 110) || !within(OpTxnCAS, 25, 80) || !within(OpCASDelete, 5, 40) {
		t.Errorf("operation mix %v, want about 35/35/6/12/8/4", kinds)
	}
	// Both outcomes of a conditional write must be common, or one of them
	// goes unchecked: those to the previous key mostly succeed, those to a
	// random key mostly expect a stale revision.
	cc := rec.ConditionalCounts()
	t.Logf("conditional writes: %v", cc)
	if n := cc["succeeded"] + cc["refused"]; cc["succeeded"] < n/5 || cc["refused"] < n/5 {
		t.Errorf("conditional writes %v: want at least a fifth each succeeded and refused", cc)
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
	if losses := LostWrites(rec, f.final(w.KeyNames())); len(losses) != 0 {
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

// TestWorkersLoneClientCAS: a client alone learns every revision from its
// own answers, so each conditional write it bases on one succeeds, and the
// only refusals are transactions that compared with a value it did not
// know (""). The history is a function of the seed: one client, a fake
// that answers in order.
func TestWorkersLoneClientCAS(t *testing.T) {
	f := newFakeNode()
	rec := NewRecorder()
	w := Workers{Endpoints: serve(t, f, 2), Clients: 1, Keys: 4, OpsPerClient: 400, Rec: rec, Seed: 9}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	var conditional int
	for _, op := range rec.Ops() {
		if !op.Input.Kind.isConditional() {
			continue
		}
		conditional++
		wantRefused := op.Input.Kind == OpTxnCAS && op.Input.Old == ""
		if op.Status != StatusOK || op.Output.Refused != wantRefused {
			t.Errorf("%+v: refused %v, want %v", op, op.Output.Refused, wantRefused)
		}
	}
	if conditional < 60 {
		t.Fatalf("only %d conditional writes in 400 operations", conditional)
	}
	if _, err := rec.Check(time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	if losses := LostWrites(rec, f.final(w.KeyNames())); len(losses) != 0 {
		t.Fatalf("losses against a correct fake: %v", losses)
	}
}

// TestWorkersCatchIgnoredConditions runs a fake that applies conditional
// writes whatever their condition. A second client, run after the first
// on the same keys, knows nothing of them: its creates (If-None-Match: *)
// of keys that exist and its transactions comparing with "" must be
// refused, and their success is a violation. The clients run one after the
// other, so the history is a function of the seeds.
func TestWorkersCatchIgnoredConditions(t *testing.T) {
	f := newFakeNode()
	f.ignoreConditions = true
	endpoints := serve(t, f, 1)
	rec := NewRecorder()
	for i := range 2 {
		w := Workers{Endpoints: endpoints, Clients: 1, FirstClient: i, Keys: 4, OpsPerClient: 100, Rec: rec, Seed: uint64(20 + i)}
		if err := w.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.Check(time.Minute, ""); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("a fake that ignores preconditions judged: %v", err)
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
	txnGot := func(kvs string) string {
		return `{"index":9,"revision":9,"succeeded":false,"results":[{"op":"get","kvs":` + kvs + `,"count":1}]}`
	}
	cases := []struct {
		name       string
		kind       OpKind
		status     int
		header     map[string]string
		body       string
		readErr    error
		wantStatus Status
		wantOut    Output
		malformed  bool
	}{
		{"get found", OpGet, 200, map[string]string{"ETag": `"7"`}, "v", nil, StatusOK, Output{Value: "v", Found: true, Rev: 7}, false},
		{"get empty value", OpGet, 200, map[string]string{"ETag": `"7"`}, "", nil, StatusOK, Output{Value: "", Found: true, Rev: 7}, false},
		{"get without ETag", OpGet, 200, nil, "v", nil, StatusFailed, Output{}, true},
		{"get weak ETag", OpGet, 200, map[string]string{"ETag": `W/"7"`}, "v", nil, StatusFailed, Output{}, true},
		{"get ETag 0", OpGet, 200, map[string]string{"ETag": `"0"`}, "v", nil, StatusFailed, Output{}, true},
		{"get absent", OpGet, 404, nil, "key not found", nil, StatusOK, Output{}, false},
		{"get 503", OpGet, 503, map[string]string{"Retry-After": "1"}, "no leader", nil, StatusFailed, Output{}, false},
		{"get 504", OpGet, 504, nil, "timed out", nil, StatusFailed, Output{}, false},
		{"get body cut", OpGet, 200, map[string]string{"ETag": `"7"`}, "v", io.ErrUnexpectedEOF, StatusFailed, Output{}, false},
		{"put ok", OpPut, 200, nil, `{"index":3,"revision":3}`, nil, StatusOK, Output{Rev: 3}, false},
		{"put without revision", OpPut, 200, nil, `{"index":3}`, nil, StatusUnknown, Output{}, true},
		{"put at revision 0", OpPut, 200, nil, `{"index":3,"revision":0}`, nil, StatusUnknown, Output{}, true},
		{"put no leader", OpPut, 503, map[string]string{"Retry-After": "1"}, "no leader", nil, StatusFailed, Output{}, false},
		{"put node stopping", OpPut, 503, nil, "node is stopping", nil, StatusUnknown, Output{}, false},
		{"put timed out", OpPut, 504, nil, "timed out", nil, StatusUnknown, Output{}, false},
		{"put 500", OpPut, 500, nil, "internal", nil, StatusUnknown, Output{}, false},
		{"put body cut", OpPut, 200, nil, "", io.ErrUnexpectedEOF, StatusUnknown, Output{}, false},
		{"put 412 is not a refusal", OpPut, 412, nil, `{"mod_revision":3}`, nil, StatusUnknown, Output{}, false},
		{"delete ok", OpDelete, 200, nil, `{"index":4,"revision":4,"deleted":1}`, nil, StatusOK, Output{Found: true, Rev: 4}, false},
		{"delete of an absent key", OpDelete, 200, nil, `{"index":5,"revision":4,"deleted":0}`, nil, StatusOK, Output{Rev: 4}, false},
		{"delete without count", OpDelete, 200, nil, `{"index":4,"revision":4}`, nil, StatusUnknown, Output{}, true},
		{"delete 404 is not a read", OpDelete, 404, nil, "", nil, StatusUnknown, Output{}, false},
		{"delete dropped", OpDelete, 503, map[string]string{"Retry-After": "1"}, "dropped", nil, StatusFailed, Output{}, false},
		{"cas ok", OpCAS, 200, nil, `{"index":8,"revision":8}`, nil, StatusOK, Output{Rev: 8}, false},
		{"cas 412, present", OpCAS, 412, map[string]string{"ETag": `"6"`}, `{"error":"x","revision":9,"mod_revision":6}`, nil,
			StatusOK, Output{Refused: true, Found: true, Rev: 6}, false},
		{"cas 412, absent", OpCAS, 412, nil, `{"error":"x","revision":9,"mod_revision":0}`, nil,
			StatusOK, Output{Refused: true}, false},
		{"cas 412, ETag disagrees", OpCAS, 412, map[string]string{"ETag": `"5"`}, `{"revision":9,"mod_revision":6}`, nil,
			StatusFailed, Output{}, true},
		{"cas 412 without mod_revision", OpCAS, 412, nil, `{"error":"x"}`, nil, StatusFailed, Output{}, true},
		{"cas 412 body cut", OpCAS, 412, nil, `{"err`, io.ErrUnexpectedEOF, StatusFailed, Output{}, false},
		{"put 503 body cut", OpPut, 503, map[string]string{"Retry-After": "1"}, "no", io.ErrUnexpectedEOF, StatusFailed, Output{}, false},
		{"cas timed out", OpCAS, 504, nil, "timed out", nil, StatusUnknown, Output{}, false},
		{"cas no leader", OpCAS, 503, map[string]string{"Retry-After": "1"}, "no leader", nil, StatusFailed, Output{}, false},
		{"cas-delete ok", OpCASDelete, 200, nil, `{"index":8,"revision":8,"deleted":1}`, nil, StatusOK, Output{Found: true, Rev: 8}, false},
		{"cas-delete applied, deleted nothing", OpCASDelete, 200, nil, `{"index":8,"revision":8,"deleted":0}`, nil, StatusUnknown, Output{}, true},
		{"cas-delete 412", OpCASDelete, 412, map[string]string{"ETag": `"6"`}, `{"revision":9,"mod_revision":6}`, nil,
			StatusOK, Output{Refused: true, Found: true, Rev: 6}, false},
		{"txn succeeded", OpTxnCAS, 200, nil, `{"index":9,"revision":9,"succeeded":true,"results":[{"op":"put"}]}`, nil,
			StatusOK, Output{Rev: 9}, false},
		{"txn refused, present", OpTxnCAS, 200, nil, txnGot(`[{"key":"k","value":"v","create_revision":2,"mod_revision":6,"version":2}]`), nil,
			StatusOK, Output{Refused: true, Found: true, Value: "v", Rev: 6}, false},
		{"txn refused, binary value", OpTxnCAS, 200, nil, txnGot(`[{"key":"k","value_b64":"/w==","mod_revision":6}]`), nil,
			StatusOK, Output{Refused: true, Found: true, Value: "\xff", Rev: 6}, false},
		{"txn refused, absent", OpTxnCAS, 200, nil, txnGot(`[]`), nil, StatusOK, Output{Refused: true}, false},
		{"txn without succeeded", OpTxnCAS, 200, nil, `{"index":9,"revision":9}`, nil, StatusUnknown, Output{}, true},
		{"txn refused without its get", OpTxnCAS, 200, nil, `{"index":9,"revision":9,"succeeded":false,"results":[]}`, nil,
			StatusUnknown, Output{}, true},
		{"txn 412 is not a refusal", OpTxnCAS, 412, nil, `{"mod_revision":3}`, nil, StatusUnknown, Output{}, false},
		{"txn 400", OpTxnCAS, 400, nil, "bad", nil, StatusUnknown, Output{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			for k, v := range tc.header {
				resp.Header.Set(k, v)
			}
			out, st, err := classify(tc.kind, resp, []byte(tc.body), tc.readErr)
			if st != tc.wantStatus || out != tc.wantOut {
				t.Fatalf("classify = %+v, %v, want %+v, %v", out, st, tc.wantOut, tc.wantStatus)
			}
			if (st == StatusOK) != (err == nil) {
				t.Fatalf("err = %v with status %v", err, st)
			}
			if errors.Is(err, ErrMalformedAnswer) != tc.malformed {
				t.Fatalf("err = %v, malformed answer: want %v", err, tc.malformed)
			}
		})
	}
}

// TestRequest checks the requests of each kind against docs/api.md.
func TestRequest(t *testing.T) {
	cases := []struct {
		in     Input
		method string
		path   string
		header map[string]string
		body   string
	}{
		{Input{Kind: OpGet, Key: "k/1"}, "GET", "/v1/kv/k%2F1", nil, ""},
		{Input{Kind: OpPut, Key: "k", Value: "v"}, "PUT", "/v1/kv/k", nil, "v"},
		{Input{Kind: OpDelete, Key: "k"}, "DELETE", "/v1/kv/k", nil, ""},
		{Input{Kind: OpCAS, Key: "k", Value: "v", Rev: 42}, "PUT", "/v1/kv/k", map[string]string{"If-Match": `"42"`}, "v"},
		{Input{Kind: OpCAS, Key: "k", Value: "v"}, "PUT", "/v1/kv/k", map[string]string{"If-None-Match": "*"}, "v"},
		{Input{Kind: OpCASDelete, Key: "k", Rev: 7}, "DELETE", "/v1/kv/k", map[string]string{"If-Match": `"7"`}, ""},
		{Input{Kind: OpPut, Key: "r1-kodd2/x/../y", Value: "v"}, "PUT", "/v1/kv/r1-kodd2%2Fx%2F..%2Fy", nil, "v"},
		{Input{Kind: OpGet, Key: "a//b c%2F"}, "GET", "/v1/kv/a%2F%2Fb%20c%252F", nil, ""},
		{Input{Kind: OpDelete, Key: "\xff\x00"}, "DELETE", "/v1/kv/%FF%00", nil, ""},
		{Input{Kind: OpTxnCAS, Key: "k\xff", Old: "a", Value: "b"}, "POST", "/v1/txn", nil,
			`{"compare":[{"key_b64":"a/8=","target":"value","op":"=","value":"a"}],"success":[{"op":"put","key_b64":"a/8=","value":"b"}],"failure":[{"op":"get","key_b64":"a/8="}]}`},
		{Input{Kind: OpTxnCAS, Key: "", Value: "b"}, "POST", "/v1/txn", nil,
			`{"compare":[{"key":"","target":"value","op":"=","value":""}],"success":[{"op":"put","key":"","value":"b"}],"failure":[{"op":"get","key":""}]}`},
		{Input{Kind: OpTxnCAS, Key: "k", Old: "a", Value: "b"}, "POST", "/v1/txn", nil,
			`{"compare":[{"key":"k","target":"value","op":"=","value":"a"}],"success":[{"op":"put","key":"k","value":"b"}],"failure":[{"op":"get","key":"k"}]}`},
	}
	for _, tc := range cases {
		req, err := request(t.Context(), "http://node/", tc.in)
		if err != nil {
			t.Fatal(err)
		}
		var body []byte
		if req.Body != nil {
			if body, err = io.ReadAll(req.Body); err != nil {
				t.Fatal(err)
			}
		}
		if req.Method != tc.method || req.URL.EscapedPath() != tc.path || string(body) != tc.body {
			t.Errorf("%+v: %s %s %s, want %s %s %s", tc.in, req.Method, req.URL.EscapedPath(), body, tc.method, tc.path, tc.body)
		}
		for _, h := range []string{"If-Match", "If-None-Match"} {
			if got := req.Header.Get(h); got != tc.header[h] {
				t.Errorf("%+v: %s: %q, want %q", tc.in, h, got, tc.header[h])
			}
		}
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
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePorts(t, 1)[0]) // nothing listens there
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

	err := testutil.Poll(10*time.Second, time.Millisecond, func() error {
		if n := rec.Len(); n < 50 {
			return fmt.Errorf("only %d operations recorded", n)
		}
		return nil
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
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

// TestWorkersOddKeys runs clients that also send odd keys against a
// correct fake: the keys of odd shapes are written and read back byte for
// byte, and checked like the others; every write of a key no write may
// carry is refused, recorded as failed, and kept out of the model.
func TestWorkersOddKeys(t *testing.T) {
	f := newFakeNode()
	rec := NewRecorder()
	w := Workers{Endpoints: serve(t, f, 2), Clients: 2, OpsPerClient: 500, OddKeys: 40, Rec: rec, Seed: 4, KeyPrefix: "r1-k"}
	if err := w.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	ops := rec.Ops()
	odd := w.OddKeyNames()
	perKey := map[string]int{}
	txnDone := map[string]bool{} // a transaction on the key that wrote
	foundOdd := 0
	refusedLens := map[int]int{}
	refusedKinds := map[OpKind]int{}
	for _, op := range ops {
		key := op.Input.Key
		switch {
		case refusedKey(key):
			refusedLens[len(key)]++
			refusedKinds[op.Input.Kind]++
			if op.Status != StatusFailed || !strings.HasPrefix(op.Cause, "refused: ") || !strings.Contains(op.Cause, ": 400 ") {
				t.Errorf("a write of a %d-byte key: %v %q, want failed, refused: 400", len(key), op.Status, op.Cause)
			}
		case slices.Contains(odd, key):
			perKey[key]++
			if op.Status != StatusOK {
				t.Errorf("%v of odd key %q: %v %s", op.Input.Kind, key, op.Status, op.Cause)
			}
			if op.Input.Kind == OpGet && op.Output.Found {
				foundOdd++
			}
			if op.Input.Kind == OpTxnCAS && op.Status == StatusOK && !op.Output.Refused {
				txnDone[key] = true
			}
		}
	}
	for _, k := range odd {
		// A transaction names the key in JSON, where a key that is not
		// UTF-8 must go as key_b64: one that wrote each key shows it did.
		if perKey[k] == 0 || !txnDone[k] {
			t.Errorf("odd key %.40q: %d operations, a transaction that wrote it: %v", k, perKey[k], txnDone[k])
		}
	}
	for _, k := range w.refusedKeys() {
		if refusedLens[len(k)] == 0 {
			t.Errorf("no write of the refused key of %d bytes", len(k))
		}
	}
	for _, k := range []OpKind{OpPut, OpDelete, OpCAS, OpTxnCAS} {
		if refusedKinds[k] == 0 {
			t.Errorf("no %v of a refused key", k)
		}
	}
	if foundOdd == 0 {
		t.Error("no read of an odd key found its value")
	}
	if r := CountRefusals(ops); r.Bad != 0 || r.Unjudged != 0 || r.Refused == 0 {
		t.Errorf("refusals %v against a fake that refuses them all", r)
	}
	for _, op := range Operations(ops) {
		if refusedKey(op.Input.(Input).Key) {
			t.Fatalf("a write of a refused key is in the model: %v", op.Input.(Input).Kind)
		}
	}
	if _, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "odd.html")); err != nil {
		t.Fatal(err)
	}
	if losses := LostWrites(rec, f.final(w.KeyNames())); len(losses) != 0 {
		t.Fatalf("losses against a correct fake: %v", losses)
	}
}

// TestWorkersCatchBadRefusals: a node that takes, or refuses unclearly, a
// write of a key no write may carry is caught (ErrBadRefusal in the cause);
// a 413 is a refusal too, and a 503 proves nothing either way.
func TestWorkersCatchBadRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  badKeyAnswer
		wantBad bool
	}{
		{"acknowledged", badKeyAnswer{status: http.StatusOK, apply: true}, true},
		{"500", badKeyAnswer{status: http.StatusInternalServerError, apply: true}, true},
		{"404", badKeyAnswer{status: http.StatusNotFound}, true},
		{"400 echoing the key", badKeyAnswer{status: http.StatusBadRequest, echo: true}, true},
		{"413", badKeyAnswer{status: http.StatusRequestEntityTooLarge}, false},
		{"503", badKeyAnswer{status: http.StatusServiceUnavailable}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNode()
			f.badKeys = &tc.answer
			rec := NewRecorder()
			w := Workers{Endpoints: serve(t, f, 1), Clients: 1, OpsPerClient: 60, OddKeys: 100, Rec: rec, Seed: 8}
			if err := w.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			r := CountRefusals(rec.Ops())
			if (r.Bad > 0) != tc.wantBad || r.Bad+r.Refused+r.Unjudged == 0 {
				t.Fatalf("refusals %v, want bad ones: %v", r, tc.wantBad)
			}
			if tc.wantBad && !strings.Contains(r.FirstBad, ErrBadRefusal.Error()) {
				t.Fatalf("first bad refusal %q does not say so", r.FirstBad)
			}
			// Whatever the node did with them, those writes stay out of
			// the model, and the rest of the history checks out.
			if _, err := rec.Check(time.Minute, filepath.Join(t.TempDir(), "x.html")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckRefusal(t *testing.T) {
	long := strings.Repeat("k", maxRefusalBytes)
	for _, tc := range []struct {
		status       int
		body         string
		refused, bad bool
	}{
		{400, "key too large: 40000 bytes, at most 8192", true, false},
		{413, `{"error":{"code":413,"message":"key too large"}}`, true, false},
		{400, "key too large: " + long, false, true},
		{200, `{"index":9,"revision":9}`, false, true},
		{204, "", false, true},
		{307, "", false, true},
		{404, "key not found", false, true},
		{412, `{"mod_revision":0}`, false, true},
		{500, "internal error: key too large", false, true},
		{503, "no leader", false, false},
		{504, "timed out", false, false},
	} {
		err := checkRefusal(tc.status, []byte(tc.body), "put of a 40000-byte key")
		if err == nil {
			t.Fatalf("%d: no cause", tc.status)
		}
		if refused := strings.HasPrefix(err.Error(), "refused: "); refused != tc.refused || errors.Is(err, ErrBadRefusal) != tc.bad {
			t.Errorf("%d %.40q: %v; want refused %v, bad %v", tc.status, tc.body, err, tc.refused, tc.bad)
		}
		if len(err.Error()) > 400 {
			t.Errorf("%d: a cause of %d bytes", tc.status, len(err.Error()))
		}
	}
}

// TestOddKeyNames pins the odd keys' names: under the prefix, distinct,
// and the longest exactly messages.MaxKeyBytes; the refused ones empty or
// over it.
func TestOddKeyNames(t *testing.T) {
	w := Workers{Keys: 2, KeyPrefix: "x", OddKeys: 1}
	odd := w.OddKeyNames()
	if got := w.KeyNames(); !slices.Equal(got, append([]string{"x0", "x1"}, odd...)) {
		t.Fatalf("KeyNames with odd keys: %d names, want x0, x1 and the %d odd ones", len(got), len(odd))
	}
	seen := map[string]bool{}
	for _, k := range odd {
		if !strings.HasPrefix(k, "x") || seen[k] || refusedKey(k) {
			t.Errorf("odd key %q: not under the prefix, twice, or refused", k)
		}
		seen[k] = true
	}
	if last := odd[len(odd)-1]; len(last) != messages.MaxKeyBytes {
		t.Errorf("the longest odd key has %d bytes, want %d", len(last), messages.MaxKeyBytes)
	}
	for _, k := range w.refusedKeys() {
		if !refusedKey(k) || (k != "" && !strings.HasPrefix(k, "x")) {
			t.Errorf("refused key of %d bytes: not refused, or not under the prefix", len(k))
		}
	}
}
