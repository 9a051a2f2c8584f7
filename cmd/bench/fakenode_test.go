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
	f := &fakeNode{values: make(map[string][]byte), queries: make(map[string]int), id: 1, leader: 1}
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
	if r.URL.Path == "/v1/status" {
		f.statuses.Add(1)
		f.mu.Lock()
		applied := f.acked
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": f.id, "leader": f.leader, "term": 2, "applied_index": applied,
		})
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, kvPath)
	if !ok {
		http.NotFound(w, r)
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
		if status/100 != 2 {
			f.mu.Unlock()
			http.Error(w, "refused", status)
			return
		}
		f.values[key] = body
		f.acked++
		index := f.acked
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]int{"index": index})
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
