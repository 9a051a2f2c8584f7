package main

import (
	"io"
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
	// refused holds cas's 412s under --contention, which are completed
	// operations there; nil otherwise.
	refused *opStats
	body    []byte // reused for the answers the coordination commands read

	// cas and txn: the revision the client last wrote its key (txn: its
	// first key) at; stale when an answer left it unknown (a 504, a
	// failed connection), so that it must be read again before the next
	// conditional write.
	rev   uint64
	stale bool
	// cas: the index of the key in the key space; txn: the JSON of the
	// client's --txn-ops keys, quoted.
	casKey  uint64
	txnKeys [][]byte
	compare bool // txn: guard by the first key's mod_revision
	// range: the query of every read and the keys each answer must hold.
	rangeQuery string
	rangeWant  int
	// watch: where the client records the revision and time of its
	// acknowledged writes.
	acks *ackLog
}

// loop runs until ctl says stop.
func (w *worker) loop(ctl *control) {
	switch w.cmd {
	case cmdCAS:
		w.casLoop(ctl)
		return
	case cmdTxn:
		w.txnLoop(ctl)
		return
	case cmdRange:
		w.rangeLoop(ctl)
		return
	case cmdWatch:
		w.watchWriteLoop(ctl)
		return
	}
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
	if w.cmd == cmdPut || w.cmd == cmdWatch {
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

// send sends req and reads the whole answer into w.body, which stays valid
// until the client's next request. ok is false when there was no complete
// answer.
func (w *worker) send(req *http.Request) (status int, header http.Header, body []byte, ok bool) {
	resp, err := w.rt.RoundTrip(req)
	if err != nil {
		return 0, nil, nil, false
	}
	w.body, err = readAll(w.body[:0], resp.Body, resp.ContentLength)
	_ = resp.Body.Close()
	if err != nil {
		return resp.StatusCode, resp.Header, nil, false
	}
	return resp.StatusCode, resp.Header, w.body, true
}

// readAll appends what r holds to buf, growing it only when an answer is
// larger than any before; size is the Content-Length, -1 if unknown.
func readAll(buf []byte, r io.Reader, size int64) ([]byte, error) {
	if size > 0 && int64(cap(buf)-len(buf)) < size && size < 1<<30 {
		buf = append(buf, make([]byte, size)...)[:len(buf)]
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// outcomeOf classifies an answer the coordination commands did not
// recognise as an operation: a failed connection, 503, 504 or another
// status, or a 2xx whose body is not what was asked for.
func outcomeOf(status int, ok bool) outcome {
	if !ok {
		return outcomeTransport
	}
	if o := classify(status, 0, -1); o != outcomeOK {
		return o
	}
	return outcomeBadReply
}

// uncertain says whether a write that ended with o may still have been
// applied, so that the revision the client knows may no longer be its
// key's. A 503 proposed nothing; a 412 or a failed compare wrote nothing.
func uncertain(o outcome) bool {
	return o != outcomeOK && o != outcomeUnavailable && o != outcomeConflict
}
