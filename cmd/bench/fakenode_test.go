package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeNode is a stand-in for a node's client API that keeps the numbers a
// test compares with the report: how many PUTs it acknowledged (answered
// 2xx), which keys, and what it was asked.
type fakeNode struct {
	url string

	mu     sync.Mutex
	values map[string][]byte // acknowledged PUTs by key
	puts   int               // PUT requests seen
	acked  int               // PUTs answered 2xx
	gets   int               // GET requests seen
	served int               // GETs answered 2xx
	// queries holds each GET's raw query, to check the consistency asked for.
	queries map[string]int

	// putStatus, when set, decides the answer to the n-th PUT (from 0);
	// 200 stores the value.
	putStatus func(n int) int
	// getStatus, when set, decides the answer to the n-th GET; 200 answers
	// the stored value, or 404 when there is none.
	getStatus func(n int) int
	// getBody, when set, replaces the stored value in 200 answers.
	getBody []byte
	// leader makes /v1/status report this node as the leader.
	id, leader uint64
	statuses   atomic.Int64 // /v1/status requests

	// The coordination API (fakecoord_test.go): every write is a revision.
	rev       uint64
	modRev    map[string]uint64
	createRev map[string]uint64
	version   map[string]uint64
	conflicts int // conditional PUTs answered 412, transactions that failed
	txns      int // transactions seen
	committed int // transactions that succeeded
	ranges    int // range reads seen
	// interfere, when set, is asked before the n-th conditional write
	// (a PUT with If-Match, or a transaction; from 0) whether another
	// writer writes its key first, so that the condition fails.
	interfere func(n int) bool
	condN     int
	// rangeCut, when set, is how many keys to leave out of the n-th range
	// answer.
	rangeCut func(n int) int
	// The watch: every write appended to log, changed closed and replaced
	// on each append.
	log        []fakeEvent
	changed    chan struct{}
	watchers   int // watch streams opened
	watchQuery map[string]int
	// watchHook, when set, decides what the watcher-th stream (in the
	// order they opened) does with its n-th event.
	watchHook func(watcher, n int) watchAction
	// timeoutApplies makes a PUT that putStatus answers 504 apply all
	// the same, as a write the node gave up waiting for may.
	timeoutApplies bool
	// txnTimeout, when set, makes the n-th transaction apply and then
	// answer 504.
	txnTimeout func(n int) bool
	// noWatch answers 404 to watches, as a node without them.
	noWatch bool
	// progressEvery, when above 0, sends a progress mark after every that
	// many events.
	progressEvery int
	// The leases (lease_test.go).
	leases fakeLeases
}

func newFakeNode(t *testing.T, configure func(*fakeNode)) *fakeNode {
	t.Helper()
	return startFakeNode(t, configure, nil)
}

// newTLSFakeNode is newFakeNode serving https with srvCfg.
func newTLSFakeNode(t *testing.T, configure func(*fakeNode), srvCfg *tls.Config) *fakeNode {
	t.Helper()
	return startFakeNode(t, configure, srvCfg)
}

func startFakeNode(t *testing.T, configure func(*fakeNode), srvCfg *tls.Config) *fakeNode {
	t.Helper()
	f := &fakeNode{
		values: make(map[string][]byte), queries: make(map[string]int), id: 1, leader: 1,
		modRev: make(map[string]uint64), createRev: make(map[string]uint64), version: make(map[string]uint64),
		changed: make(chan struct{}), watchQuery: make(map[string]int),
	}
	if configure != nil {
		configure(f)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	if srvCfg != nil {
		srv.TLS = srvCfg
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are tested
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	if f.serveLeases(w, r) {
		return
	}
	if r.URL.Path == "/v1/status" {
		f.statuses.Add(1)
		f.mu.Lock()
		applied := f.rev
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": f.id, "leader": f.leader, "term": 2, "applied_index": applied,
		})
		return
	}
	if r.URL.Path == txnPath {
		f.serveTxn(w, r)
		return
	}
	if key, ok := strings.CutPrefix(r.URL.Path, watchPath); ok {
		f.serveWatch(w, r, key)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, kvPath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodGet && key == "" {
		f.serveRange(w, r)
		return
	}
	switch r.Method {
	case http.MethodPut:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		n := f.puts
		f.puts++
		status := http.StatusOK
		if f.putStatus != nil {
			status = f.putStatus(n)
		}
		if status == http.StatusGatewayTimeout && f.timeoutApplies {
			f.write(key, body)
		}
		if status/100 != 2 {
			f.mu.Unlock()
			http.Error(w, "refused", status)
			return
		}
		if ifMatch := r.Header.Get("If-Match"); ifMatch != "" {
			if !f.checkMatch(w, key, ifMatch) {
				f.mu.Unlock()
				return
			}
		}
		rev := f.write(key, body)
		f.acked++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]uint64{"index": rev, "revision": rev})
	case http.MethodGet:
		f.mu.Lock()
		n := f.gets
		f.gets++
		f.queries[r.URL.RawQuery]++
		status := http.StatusOK
		if f.getStatus != nil {
			status = f.getStatus(n)
		}
		v, found := f.values[key]
		if status == http.StatusOK && !found {
			status = http.StatusNotFound
		}
		if f.getBody != nil {
			v = f.getBody
		}
		if status/100 == 2 {
			f.served++
		}
		f.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "refused", status)
			return
		}
		if etag := f.etag(key); etag != "" {
			w.Header().Set("ETag", etag)
		}
		_, _ = w.Write(v)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// counts returns the node's tallies under its lock.
func (f *fakeNode) counts() (puts, acked, gets, served int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, f.acked, f.gets, f.served
}

// refusedEndpoint is the URL of a port nothing listens on: a listener is
// opened to get a free port and closed at once.
func refusedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}
