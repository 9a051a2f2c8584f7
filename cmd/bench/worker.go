package main

import (
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"
)

const kvPath = "/v1/kv/"

// serializableQuery asks the node for a local read.
const serializableQuery = "consistency=serializable"

// worker is one client: it sends one request at a time to its endpoint and
// records what came back in its own statistics.
type worker struct {
	id        int
	base      *url.URL
	rt        http.RoundTripper
	putHeader http.Header // shared, read-only
	getHeader http.Header // shared, read-only
	names     keyNamer
	value     []byte // shared, read-only
	cmd       command
	readRatio float64
	keys      uint64
	query     string // of reads
	rng       *rand.Rand
	path      []byte // reused for every request's path
	seq       uint64 // next PUT key of this client
	reads     *opStats
	writes    *opStats
}

// loop runs until ctl says stop.
func (w *worker) loop(ctl *control) {
	now := time.Now()
	for ctl.claim(now) {
		read := w.cmd == cmdGet || (w.cmd == cmdMixed && w.rng.Float64() < w.readRatio)
		var req *http.Request
		want := -1
		stats := w.writes
		if read {
			req = w.getRequest(w.rng.Uint64N(w.keys))
			want = len(w.value)
			stats = w.reads
		} else {
			req = w.putRequest()
		}
		start := time.Now()
		o, status := exchange(w.rt, req, want)
		now = time.Now()
		stats.add(o, status, now.Sub(start))
		ctl.done(o)
	}
}

// putRequest writes a new key for put, or a random key of the key space
// for mixed, which then stays readable.
func (w *worker) putRequest() *http.Request {
	w.path = append(w.path[:0], kvPath...)
	if w.cmd == cmdPut {
		w.path = w.names.appendPutKey(w.path, w.id, w.seq)
		w.seq++
	} else {
		w.path = w.names.appendSpaceKey(w.path, w.rng.Uint64N(w.keys))
	}
	return newCall(w.base, w.putHeader, http.MethodPut, string(w.path), "", w.value)
}

func (w *worker) getRequest(i uint64) *http.Request {
	w.path = w.names.appendSpaceKey(append(w.path[:0], kvPath...), i)
	return newCall(w.base, w.getHeader, http.MethodGet, string(w.path), w.query, nil)
}

// spaceKeyRequest writes key i of the key space, for the preload.
func (w *worker) spaceKeyRequest(i uint64) *http.Request {
	w.path = w.names.appendSpaceKey(append(w.path[:0], kvPath...), i)
	return newCall(w.base, w.putHeader, http.MethodPut, string(w.path), "", w.value)
}
