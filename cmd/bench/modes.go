package main

import (
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// command is what the timed phase does.
type command string

const (
	cmdPut   command = "put"
	cmdGet   command = "get"
	cmdMixed command = "mixed"
	cmdCAS   command = "cas"   // compare-and-swap PUTs with If-Match
	cmdTxn   command = "txn"   // POST /v1/txn
	cmdRange command = "range" // GET /v1/kv/?prefix=
	cmdWatch command = "watch" // PUTs of new keys watched over SSE
)

// An op is one request of a client's timed phase: it returns the
// statistics it counts in, how it went and its latency; nil statistics
// end the client.
type op func(w *worker) (s *opStats, o outcome, status int, lat time.Duration)

// mode is what a command's clients do, and what they count.
type mode struct {
	reads, writes bool // which statistics the clients keep
	preloads      bool // whether the key space is written before the timed phase
	op            op
}

var modes = map[command]mode{
	cmdPut:   {writes: true, op: (*worker).kvOp},
	cmdGet:   {reads: true, preloads: true, op: (*worker).kvOp},
	cmdMixed: {reads: true, writes: true, preloads: true, op: (*worker).kvOp},
	cmdCAS:   {writes: true, preloads: true, op: (*worker).casOp},
	cmdTxn:   {writes: true, op: (*worker).txnOp},
	cmdRange: {reads: true, preloads: true, op: (*worker).rangeOp},
	cmdWatch: {writes: true, op: (*worker).watchOp},
}

// kvOp is a request of put, get or mixed: a read of a random key of the
// key space, which must answer the value written, or a PUT of a new key
// (put) or of a random key of the key space (mixed: it stays readable).
func (w *worker) kvOp() (*opStats, outcome, int, time.Duration) {
	if w.cmd == cmdGet || (w.cmd == cmdMixed && w.rng.Float64() < w.ratio) {
		a := w.send(w.newCall(http.MethodGet, w.spacePath(w.rng.Uint64N(w.keys)), w.query, nil, nil))
		return w.reads, a.outcome(len(a.body) == len(w.value)), a.status, a.lat
	}
	var path string
	if w.cmd == cmdPut {
		path = w.putPath(w.seq)
		w.seq++
	} else {
		path = w.spacePath(w.rng.Uint64N(w.keys))
	}
	a := w.send(w.newCall(http.MethodPut, path, "", w.value, nil))
	return w.writes, a.outcome(true), a.status, a.lat
}

// rangeQuery is the query of every range read of cfg: the preloaded key
// space by its prefix, --range-limit keys at most.
func rangeQuery(cfg config, names keyNamer) string {
	q := "prefix=" + url.QueryEscape(names.spacePrefix()) + "&limit=" + strconv.Itoa(cfg.rangeLimit)
	if cfg.keysOnly {
		q += "&keys_only=true"
	}
	if cfg.serializable {
		q += "&" + serializableQuery
	}
	return q
}

// rangeOp reads the key space by its prefix. An answer counts when it
// holds the keys it must, min(limit, keys); one with fewer is a short range
// (a read that lost keys), and one with more, or that is not a range
// answer, a bad reply.
func (w *worker) rangeOp() (*opStats, outcome, int, time.Duration) {
	a := w.send(w.newCall(http.MethodGet, kvPath, w.query, nil, nil))
	n, valid := 0, false
	if a.err == nil && a.status == http.StatusOK {
		n, valid = countRange(a.body)
	}
	o := a.outcome(a.status == http.StatusOK && valid && n <= w.want)
	if o == outcomeOK && n < w.want {
		o = outcomeShort
	} else if o == outcomeOK {
		w.reads.items += uint64(n)
	}
	return w.reads, o, a.status, a.lat
}

// countRange counts the keys of a range answer, {"revision":R,"kvs":[…],
// "more":B,"count":N}, without decoding them; valid is false when the
// answer is not one, or its count is not its keys.
func countRange(body []byte) (n int, valid bool) {
	c := jsonCursor{b: body}
	count, hasKVs, hasCount := uint64(0), false, false
	for f := range c.each('{') {
		switch string(f) {
		case "kvs":
			hasKVs = true
			for range c.each('[') {
				c.skip()
				n++
			}
		case "count":
			count, hasCount = c.uint(), true
		default:
			c.skip()
		}
	}
	return n, c.end() && hasKVs && (!hasCount || count == uint64(n))
}
