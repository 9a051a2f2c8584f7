package main

import (
	"net/http"
	"net/url"
	"strconv"
	"time"
)

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

// rangeLoop is the timed phase of a range client: GET /v1/kv/?prefix=…
// of the preloaded key space. An answer counts when it holds the keys it
// must, min(limit, keys); one with fewer is a short range, an error of its
// own kind (a read that lost keys), and one with more, or that is not a
// range answer, a bad reply.
func (w *worker) rangeLoop(ctl *control) {
	now := time.Now()
	for ctl.claim(now) {
		req := newCall(w.base, w.getHeader, http.MethodGet, kvPath, w.rangeQuery, nil)
		start := time.Now()
		status, _, body, ok := w.send(req)
		now = time.Now()
		o := outcomeOf(status, ok)
		if ok && status == http.StatusOK {
			n, valid := countRange(body)
			switch {
			case !valid || n > w.rangeWant:
				o = outcomeBadReply
			case n < w.rangeWant:
				o = outcomeShort
			default:
				o = outcomeOK
				w.reads.items += uint64(n)
			}
		}
		w.reads.add(o, status, now.Sub(start))
		ctl.done(o)
	}
}

// countRange counts the keys of a range answer, {"revision":R,"kvs":[…],
// "more":B,"count":N}, walking it without decoding the keys; valid is
// false when the answer is not one, or its count is not its keys.
func countRange(body []byte) (n int, valid bool) {
	c := jsonCursor{b: body}
	count, hasKVs, hasCount := uint64(0), false, false
	if c.consume('{') {
		for f, more := c.field(); more; f, more = c.field() {
			switch string(f) {
			case "kvs":
				hasKVs = true
				if c.consume('[') {
					for c.elem() {
						c.skip()
						n++
					}
				}
			case "count":
				count, hasCount = c.uint(), true
			default:
				c.skip()
			}
		}
	}
	return n, c.end() && hasKVs && (!hasCount || count == uint64(n))
}
