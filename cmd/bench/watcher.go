package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"net/url"
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

// watcher is one SSE stream, read by one goroutine through a connection it
// dials itself: no transport goroutines, one bufio.Reader for the HTTP
// framing and one for the events, so that a thousand watchers cost little.
type watcher struct {
	run        *watchRun
	base       *url.URL
	conn       net.Conn
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

// open dials the watcher's endpoint and asks for the watch of the run's
// prefix; the stream is established when the answer's header is in.
func (w *watcher) open(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), timeout time.Duration) *bufio.Reader {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var resp *http.Response
	conn, err := dial(dctx, "tcp", w.base.Host)
	if err == nil {
		w.conn = conn
		u := url.URL{Scheme: w.base.Scheme, Host: w.base.Host, Path: watchPath + string(w.run.prefix), RawQuery: "prefix=true"}
		req := &http.Request{Method: http.MethodGet, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: u.Host,
			Header: http.Header{"User-Agent": userAgent, "Accept": {"text/event-stream"}}}
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if err = req.Write(conn); err == nil {
			resp, err = http.ReadResponse(bufio.NewReaderSize(conn, 4096), req)
		}
	}
	switch {
	case err != nil:
		w.openErr = outcomeTransport
	case resp.StatusCode != http.StatusOK:
		w.openErr, w.openStatus, err = answer{status: resp.StatusCode}.outcome(false), resp.StatusCode, errors.New(resp.Status)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		w.openErr, w.openStatus, err = outcomeBadReply, resp.StatusCode, fmt.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	default:
		_ = conn.SetDeadline(time.Time{})
		return bufio.NewReaderSize(resp.Body, 4096)
	}
	if w.openCause = err; conn != nil {
		_ = conn.Close()
	}
	return nil
}

// read takes the stream's events until it ends, or the run closes it.
func (w *watcher) read(body *bufio.Reader) {
	defer w.settle()
	defer w.flushDelays()
	for sr := sse.NewReader(body); ; {
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
	for f := range c.fields() {
		switch string(f) {
		case "revision":
			rev = c.uint()
		case "events":
			for range c.elems() {
				var key, typ []byte
				escaped := true
				for f := range c.fields() {
					switch string(f) {
					case "type":
						typ, _ = c.str()
					case "key":
						key, escaped = c.str()
					default:
						c.skip()
					}
				}
				if string(typ) == "put" && !escaped && !c.bad {
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

// endReason reads the reason of an end event, {"resume_revision":R,
// "reason":"overflow"}.
func endReason(data []byte) string {
	c := jsonCursor{b: data}
	for f := range c.fields() {
		if string(f) == "reason" {
			if r, _ := c.str(); !c.bad && len(r) > 0 {
				return string(r)
			}
			break
		}
		c.skip()
	}
	return "end"
}

// deliver counts the delivery of the write of key at rev, received at recv.
func (w *watcher) deliver(key []byte, rev uint64, recv int64) {
	// The key is <prefix><writer>-<seq>; a seq its writer never issued is
	// not its write, and taking it would let a stray key grow the bitset.
	rest, ok := bytes.CutPrefix(key, w.run.prefix)
	dash := bytes.IndexByte(rest, '-')
	writer, ok1 := digits(rest[:max(dash, 0)])
	seq, ok2 := digits(rest[dash+1:])
	if !ok || !ok1 || !ok2 || writer >= uint64(len(w.run.logs)) || seq >= w.run.logs[writer].issued.Load() {
		w.n[evForeign]++
		return
	}
	for len(w.seen) <= int(writer) {
		w.seen = append(w.seen, nil)
	}
	seen := w.seen[writer]
	if word := int(seq / 64); word >= len(seen) {
		seen = append(seen, make([]uint64, max(word+1-len(seen), len(seen)))...)
		w.seen[writer] = seen
	}
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

// digits reads the decimal number b is; ok is false when it is not one, or
// has more digits than a uint64 always holds.
func digits(b []byte) (v uint64, ok bool) {
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, len(b) > 0 && len(b) < 20
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

// tally counts, for one watcher, the acknowledged writes it delivered and
// missed, and the deliveries of writes that were never acknowledged.
func (w *watcher) tally(acked [][]uint64) (delivered, missed, unacked uint64) {
	for writer, ab := range acked {
		var seen []uint64
		if writer < len(w.seen) {
			seen = w.seen[writer]
		}
		for i := range max(len(ab), len(seen)) {
			var s, a uint64
			if i < len(seen) {
				s = seen[i]
			}
			if i < len(ab) {
				a = ab[i]
			}
			delivered += uint64(bits.OnesCount64(s & a))
			missed += uint64(bits.OnesCount64(a &^ s))
			unacked += uint64(bits.OnesCount64(s &^ a))
		}
	}
	return delivered, missed, unacked
}
