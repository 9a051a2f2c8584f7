package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/raftkv/node/internal/sse"
)

const watchPath = "/v1/watch/"

// What a watcher counts besides its deliveries.
const (
	evDup       = iota // an event of a write the stream had delivered already
	evDisorder         // a revision not above the stream's last
	evWrongRev         // an event at another revision than its write's answer
	evForeign          // events of other keys, deletes, keys given as base64
	evBadData          // data that is not the JSON of an event
	evProgress         // progress marks
	evOtherType        // events of a type the API does not define
	numEvCounts
)

// watcher is one SSE stream, read by one goroutine: one bufio.Reader for
// the events, buffers reused from event to event, so that a thousand
// watchers cost little.
type watcher struct {
	run        *watchRun
	base       *url.URL
	lastRev    atomic.Uint64 // the highest revision the stream said it reached
	isSettled  atomic.Bool
	openErr    outcome // why it did not open, with the status and cause (nil: it opened)
	openStatus int
	openCause  error

	// Written by the watcher's goroutine, read once it is gone.
	seen    [][]uint64 // by writer, a bit per seq: the event was delivered
	timed   uint64     // deliveries whose acknowledgement was already known
	clamped uint64     // of those, the ones that came before it by the clocks
	n       [numEvCounts]uint64
	ended   string     // why the stream ended before the run did; "" if it did not
	keys    [][]byte   // reused: the put keys of the event being read
	delays  [256]int64 // buffered for the run's histogram
	nDelays int
}

// open asks for the watch of the run's prefix, through the writers'
// transport; the stream is established when the answer's header is in, and
// ends when ctx does.
func (w *watcher) open(ctx context.Context, rt http.RoundTripper) io.ReadCloser {
	u := url.URL{Scheme: w.base.Scheme, Host: w.base.Host, Path: watchPath + string(w.run.prefix), RawQuery: "prefix=true"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	var resp *http.Response
	if err == nil {
		req.Header = http.Header{"User-Agent": userAgent, "Accept": {"text/event-stream"}}
		resp, err = rt.RoundTrip(req)
	}
	switch {
	case err != nil:
		w.openErr = outcomeTransport
	case resp.StatusCode != http.StatusOK:
		w.openErr, w.openStatus, err = answer{status: resp.StatusCode}.outcome(false), resp.StatusCode, errors.New(resp.Status)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		w.openErr, w.openStatus, err = outcomeBadReply, resp.StatusCode, fmt.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	default:
		return resp.Body
	}
	if w.openCause = err; resp != nil {
		_ = resp.Body.Close()
	}
	return nil
}

// read takes the stream's events until it ends, or the run closes it.
func (w *watcher) read(body io.ReadCloser) {
	defer w.settle()
	defer w.flushDelays()
	defer body.Close()
	for sr := sse.NewReader(bufio.NewReaderSize(body, 4096)); ; {
		ev, err := sr.Next()
		if err != nil {
			if !w.run.stopping.Load() {
				w.ended = "dropped"
			}
			return
		}
		recv := max(int64(time.Since(w.run.epoch)), 1)
		switch string(ev.Type) {
		case "":
			w.onChange(ev, recv)
		case "progress":
			w.n[evProgress]++
			if rev, ok := topUint(ev.Data, "revision"); ok {
				w.advance(rev)
			} else {
				w.n[evBadData]++
			}
		case "end":
			w.ended = endReason(ev.Data)
			return
		default:
			w.n[evOtherType]++
		}
		if t := w.run.target.Load(); t != 0 && w.lastRev.Load() >= t {
			w.settle()
		}
	}
}

// settle says the watcher has nothing more to wait for: it saw the last
// acknowledged write, or its stream ended. Effective once.
func (w *watcher) settle() {
	if w.isSettled.CompareAndSwap(false, true) && w.run.pending.Add(-1) == 0 {
		close(w.run.allSettled)
	}
}

// advance records that the stream reached rev; a revision below the last
// breaks the order the API promises.
func (w *watcher) advance(rev uint64) {
	if rev < w.lastRev.Load() {
		w.n[evDisorder]++
	} else {
		w.lastRev.Store(rev)
	}
}

// onChange takes one revision's events: {"revision":R,"events":[{"type":
// "put","key":K,…},…]}. Only the type and the key of each event are read.
func (w *watcher) onChange(ev sse.Event, recv int64) {
	c := jsonCursor{b: ev.Data}
	w.keys = w.keys[:0]
	var rev uint64
	for f := range c.each('{') {
		switch string(f) {
		case "revision":
			rev = c.uint()
		case "events":
			for range c.each('[') {
				if key, ok := c.putKey(); ok {
					w.keys = append(w.keys, key)
				} else {
					w.n[evForeign]++
				}
			}
		default:
			c.skip()
		}
	}
	id := jsonCursor{b: ev.ID}
	if !c.end() || rev == 0 || (len(ev.ID) > 0 && (id.uint() != rev || !id.end())) {
		w.n[evBadData]++
		return
	}
	if rev == w.lastRev.Load() {
		w.n[evDisorder]++ // the revision again: its events come as one
	} else {
		w.advance(rev)
	}
	for _, key := range w.keys {
		w.deliver(key, rev, recv)
	}
}

// putKey reads an event, {"type":"put","key":K,…}; ok is false for any
// other type and for a key with escapes, which no key of the run has.
func (c *jsonCursor) putKey() (key []byte, ok bool) {
	var typ []byte
	escaped := true
	for f := range c.each('{') {
		switch string(f) {
		case "type":
			typ, _ = c.str()
		case "key":
			key, escaped = c.str()
		default:
			c.skip()
		}
	}
	return key, string(typ) == "put" && !escaped && !c.bad
}

// endReason reads the reason of an end event, {"resume_revision":R,
// "reason":"overflow"}: a stream ends once, no need for the cursor.
func endReason(data []byte) string {
	var end struct{ Reason string }
	if json.Unmarshal(data, &end) != nil || end.Reason == "" {
		return "end"
	}
	return end.Reason
}

// deliver counts the delivery of the write of key at rev, received at recv.
func (w *watcher) deliver(key []byte, rev uint64, recv int64) {
	// The key is <prefix><writer>-<seq>; a seq its writer never issued is
	// not its write, and taking it would let a stray key grow the bitset.
	rest, ok := bytes.CutPrefix(key, w.run.prefix)
	dash := bytes.IndexByte(rest, '-')
	writer, err1 := strconv.ParseUint(string(rest[:max(dash, 0)]), 10, 64)
	seq, err2 := strconv.ParseUint(string(rest[dash+1:]), 10, 64)
	if !ok || err1 != nil || err2 != nil || writer >= uint64(len(w.run.logs)) || seq >= w.run.logs[writer].issued.Load() {
		w.n[evForeign]++
		return
	}
	w.seen = grown(w.seen, int(writer)+1)
	seen := grown(w.seen[writer], int(seq/64)+1)
	w.seen[writer] = seen
	bit := uint64(1) << (seq % 64)
	if seen[seq/64]&bit != 0 {
		w.n[evDup]++
		return
	}
	seen[seq/64] |= bit
	at, ackRev := w.run.logs[writer].lookup(seq)
	if at == 0 {
		return // not acknowledged yet, perhaps never: settled at the end
	}
	if ackRev != rev {
		w.n[evWrongRev]++
	}
	d := recv - at
	if d < 0 {
		d = 0
		w.clamped++
	}
	w.timed++
	w.delays[w.nDelays] = d
	if w.nDelays++; w.nDelays == len(w.delays) {
		w.flushDelays()
	}
}

// grown is s with at least n elements; it at least doubles when it grows.
func grown[T any](s []T, n int) []T {
	if n > len(s) {
		s = append(s, make([]T, max(n-len(s), len(s)))...)
	}
	return s
}

// flushDelays hands the buffered delays to the run's histogram: a lock
// taken once per 256 deliveries costs the watchers little.
func (w *watcher) flushDelays() {
	w.run.mu.Lock()
	for _, d := range w.delays[:w.nDelays] {
		w.run.delay.record(time.Duration(d))
	}
	w.run.mu.Unlock()
	w.nDelays = 0
}
