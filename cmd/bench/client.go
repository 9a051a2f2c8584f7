package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

const (
	kvPath            = "/v1/kv/"
	serializableQuery = "consistency=serializable" // a local read
)

var userAgent = []string{"raftkv-bench"}

// The headers of the requests without a condition, shared and read-only.
var headers = map[string]http.Header{
	http.MethodGet:  {"User-Agent": userAgent},
	http.MethodPut:  {"User-Agent": userAgent, "Content-Type": {"application/octet-stream"}},
	http.MethodPost: {"User-Agent": userAgent, "Content-Type": {"application/json"}},
}

// worker is one client: it sends one request at a time to its endpoint and
// records what came back in its own statistics, merged after the run.
type worker struct {
	id      int
	base    *url.URL
	rt      http.RoundTripper
	op      op
	cmd     command
	names   keyNamer
	value   []byte // shared, read-only
	keys    uint64 // of the key space
	query   string // of reads
	ratio   float64
	rng     *rand.Rand
	path    []byte       // reused for every request's path
	body    bytes.Buffer // reused for every answer
	seq     uint64       // of the client's next new key, or value
	reads   *opStats
	writes  *opStats
	refused *opStats // cas's 412s under --contention, completed operations there

	rev   uint64   // cas and txn: the revision of the client's (first) key
	stale bool     // cas and txn: rev is unknown after an uncertain answer
	cas   uint64   // cas: the client's key in the key space
	txn   []string // txn: the client's keys
	cmp   bool     // txn: guard by the first key's mod_revision
	want  int      // range: the keys each answer must hold
	acks  *ackLog  // watch: the revision and time of each acknowledged write

	expiring *atomic.Bool // put --leases-expire: set while the leases expire
	during   *opStats     // put --leases-expire: the requests that ended while it was set
}

// putPath is the path of the client's seq-th new key.
func (w *worker) putPath(seq uint64) string {
	w.path = w.names.appendPutKey(append(w.path[:0], kvPath...), w.id, seq)
	return string(w.path)
}

// spacePath is the path of key i of the key space.
func (w *worker) spacePath(i uint64) string {
	w.path = w.names.appendSpaceKey(append(w.path[:0], kvPath...), i)
	return string(w.path)
}

// call is a request with its URL and body reader, allocated at once:
// net/http wants a fresh request per round trip (the transport may still
// read the old one's body after an error).
type call struct {
	req  http.Request
	url  url.URL
	body bytes.Reader
}

// newCall is a request to the client's endpoint, with a nil header for the
// method's usual one. A nil value sends no body.
func (w *worker) newCall(method, path, query string, value []byte, header http.Header) *http.Request {
	c := &call{url: url.URL{Scheme: w.base.Scheme, Host: w.base.Host, Path: path, RawQuery: query}}
	if header == nil {
		header = headers[method]
	}
	c.req = http.Request{Method: method, URL: &c.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: header, Host: w.base.Host}
	switch {
	case value == nil:
	case len(value) == 0:
		c.req.Body = http.NoBody // any other empty body would be sent chunked
	default:
		// io.NopCloser over a *bytes.Reader is known to the transport as
		// in memory: header and body go in one write, not two.
		c.body.Reset(value)
		c.req.Body, c.req.ContentLength = io.NopCloser(&c.body), int64(len(value))
	}
	return &c.req
}

// answer is what one request came to.
type answer struct {
	err        error // no whole answer: no connection, no header, a cut body
	status     int
	statusLine string
	header     http.Header
	body       []byte // valid until the client's next request
	lat        time.Duration
	end        time.Time
}

// send sends req and reads the whole answer into the client's buffer,
// which returns the connection to the pool for the next request.
func (w *worker) send(req *http.Request) (a answer) {
	start := time.Now()
	resp, err := w.rt.RoundTrip(req)
	if err == nil {
		a.status, a.statusLine, a.header = resp.StatusCode, resp.Status, resp.Header
		w.body.Reset()
		if _, err = w.body.ReadFrom(resp.Body); err != nil {
			err = fmt.Errorf("reading the answer: %w", err)
		}
		_ = resp.Body.Close()
		a.body = w.body.Bytes()
	}
	a.err, a.end = err, time.Now()
	a.lat = a.end.Sub(start)
	return a
}

// failure is the error of an answer that is not a 2xx, nil for one that is.
func (a answer) failure() error {
	if a.err == nil && (a.status < 200 || a.status >= 300) {
		return fmt.Errorf("%s: %s", a.statusLine, oneLine(a.body))
	}
	return a.err
}

// outcome classifies the answer: a 2xx is an operation only when valid
// (it is the answer asked for), and a bad reply otherwise.
func (a answer) outcome(valid bool) outcome {
	switch ok := a.status >= 200 && a.status < 300; {
	case a.err != nil:
		return outcomeTransport
	case ok && valid:
		return outcomeOK
	case ok:
		return outcomeBadReply
	case a.status == http.StatusServiceUnavailable:
		return outcomeUnavailable
	case a.status == http.StatusGatewayTimeout:
		return outcomeTimeout
	}
	return outcomeStatus
}
