package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftkv/node/internal/sse"
)

const watchPath = "/v1/watch/"

// watchRun is what the watchers of one run share: read-only but for the
// atomics.
type watchRun struct {
	epoch  time.Time // of the times in the ack logs
	prefix []byte    // of the writers' keys, and the watched one
	logs   []*ackLog // by writer
	delays *delaySink
	// target is the highest revision a writer was acknowledged, set once
	// the writers are done (0 until then): a watcher that has seen it has
	// seen every acknowledged write it will.
	target   atomic.Uint64
	pending  atomic.Int64  // watchers not yet settled
	settled  chan struct{} // closed when pending reaches 0
	stopping atomic.Bool   // the run closes the streams: a read error is not a drop
}

// watcher is one SSE stream, read by one goroutine through one connection
// that it dials itself: no transport goroutines, one bufio.Reader for the
// HTTP framing and one for the lines of the events.
type watcher struct {
	id        int
	run       *watchRun
	base      *url.URL
	conn      net.Conn
	lastRev   atomic.Uint64 // the highest revision an event or progress mark said the stream reached
	isSettled atomic.Bool

	// How it failed to open: an outcome, with the status; openCause is
	// nil when it opened.
	openErr    outcome
	openStatus int
	openCause  error

	// Written by the watcher's goroutine, read once it is gone.
	seen      [][]uint64 // by writer, a bit per seq: the event was delivered
	timed     uint64     // deliveries whose acknowledgement was already known
	clamped   uint64     // of those, the ones that came before it by the clocks
	dup       uint64     // an event of a write the stream had delivered already
	disorder  uint64     // a revision not above the stream's last
	wrongRev  uint64     // an event at another revision than its write's answer
	foreign   uint64     // events of other keys, deletes, keys given as base64
	badData   uint64     // data that is not the JSON of an event
	progress  uint64     // progress marks
	otherType uint64     // events of a type the API does not define
	ended     string     // why the stream ended before the run did; "" if it did not
	keys      [][]byte   // reused: the put keys of the event being read
	delays    [256]int64 // buffered for the shared histogram
	nDelays   int
}

// open dials the watcher's endpoint and asks for the watch; the stream is
// established when the answer's header is in. Failures are kept in openErr.
func (w *watcher) open(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), timeout time.Duration) (*bufio.Reader, bool) {
	fail := func(o outcome, status int, err error) (*bufio.Reader, bool) {
		w.openErr, w.openStatus, w.openCause = o, status, err
		if w.conn != nil {
			_ = w.conn.Close()
		}
		return nil, false
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	conn, err := dial(dctx, "tcp", w.base.Host)
	cancel()
	if err != nil {
		return fail(outcomeTransport, 0, err)
	}
	w.conn = conn
	u := *w.base
	u.Path = watchPath + string(w.run.prefix)
	u.RawQuery = "prefix=true"
	req := &http.Request{
		Method: http.MethodGet, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: u.Host,
		Header: http.Header{"User-Agent": userAgent, "Accept": {"text/event-stream"}},
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if err := req.Write(conn); err != nil {
		return fail(outcomeTransport, 0, err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(outcomeTransport, 0, err)
	}
	_ = conn.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusOK {
		return fail(classifyOpen(resp.StatusCode), resp.StatusCode, fmt.Errorf("%s", resp.Status))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fail(outcomeBadReply, resp.StatusCode, fmt.Errorf("Content-Type %q", ct))
	}
	return bufio.NewReaderSize(resp.Body, 4096), true
}

func classifyOpen(status int) outcome {
	if o := classify(status, 0, -1); o != outcomeOK {
		return o
	}
	return outcomeBadReply // a 2xx other than 200
}

// read takes the stream's events until it ends, or the run closes it.
func (w *watcher) read(body *bufio.Reader) {
	defer w.settle()
	defer w.flushDelays()
	sr := sse.NewReader(body)
	for {
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
			w.progress++
			if rev, ok := topUint(ev.Data, "revision"); ok {
				w.advance(rev)
			} else {
				w.badData++
			}
		case "end":
			w.ended = endReason(ev.Data)
			return
		default:
			w.otherType++
		}
		if t := w.run.target.Load(); t != 0 && w.lastRev.Load() >= t {
			w.settle()
		}
	}
}

// settle says the watcher has nothing more to wait for: it saw the last
// acknowledged write, or its stream ended. Called by the watcher and by
// the run, at most once effective.
func (w *watcher) settle() {
	if w.isSettled.CompareAndSwap(false, true) && w.run.pending.Add(-1) == 0 {
		close(w.run.settled)
	}
}

// advance records that the stream reached rev; a revision that is not
// above the last one breaks the order the API promises.
func (w *watcher) advance(rev uint64) bool {
	last := w.lastRev.Load()
	if rev < last {
		w.disorder++
		return false
	}
	w.lastRev.Store(rev)
	return true
}

// onChange takes one revision's events: {"revision":R,"events":[{"type":
// "put","key":K,…},…]}. Only the type and the key of each event are read.
func (w *watcher) onChange(ev sse.Event, recv int64) {
	c := jsonCursor{b: ev.Data}
	w.keys = w.keys[:0]
	var rev uint64
	if c.consume('{') {
		for f, more := c.field(); more; f, more = c.field() {
			switch string(f) {
			case "revision":
				rev = c.uint()
			case "events":
				if c.consume('[') {
					for c.elem() {
						if key, ok := eventPutKey(&c); ok {
							w.keys = append(w.keys, key)
						} else {
							w.foreign++
						}
					}
				}
			default:
				c.skip()
			}
		}
	}
	if !c.end() || rev == 0 || (len(ev.ID) > 0 && !isDecimal(ev.ID, rev)) {
		w.badData++
		return
	}
	if last := w.lastRev.Load(); rev == last {
		w.disorder++ // the revision again: its events come as one
	} else {
		w.advance(rev)
	}
	for _, key := range w.keys {
		w.deliver(key, rev, recv)
	}
}

// eventPutKey reads one event object and returns its key when it is a put
// of a key given as text.
func eventPutKey(c *jsonCursor) (key []byte, ok bool) {
	if !c.consume('{') {
		return nil, false
	}
	put, plain := false, false
	for f, more := c.field(); more; f, more = c.field() {
		switch string(f) {
		case "type":
			t, _ := c.str()
			put = string(t) == "put"
		case "key":
			var escaped bool
			key, escaped = c.str()
			plain = !escaped
		default:
			c.skip()
		}
	}
	return key, put && plain && !c.bad
}

// deliver counts the delivery of the write of key at rev, received at recv.
func (w *watcher) deliver(key []byte, rev uint64, recv int64) {
	writer, seq, ok := w.parseKey(key)
	if !ok {
		w.foreign++
		return
	}
	for len(w.seen) <= writer {
		w.seen = append(w.seen, nil)
	}
	seen := w.seen[writer]
	word := int(seq / 64)
	if word >= len(seen) {
		seen = append(seen, make([]uint64, max(word+1-len(seen), len(seen)))...)
		w.seen[writer] = seen
	}
	bit := uint64(1) << (seq % 64)
	if seen[word]&bit != 0 {
		w.dup++
		return
	}
	seen[word] |= bit
	at, ackRev := w.run.logs[writer].lookup(seq)
	if at == 0 {
		// Not acknowledged yet, perhaps never: settled at the end.
		return
	}
	if ackRev != rev {
		w.wrongRev++
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

// parseKey reads <prefix><writer>-<seq> back into its writer and seq.
func (w *watcher) parseKey(key []byte) (writer int, seq uint64, ok bool) {
	rest, found := bytes.CutPrefix(key, w.run.prefix)
	if !found {
		return 0, 0, false
	}
	i := 0
	for ; i < len(rest) && rest[i] >= '0' && rest[i] <= '9' && i < 9; i++ {
		writer = writer*10 + int(rest[i]-'0')
	}
	if i == 0 || i >= len(rest) || rest[i] != '-' || writer >= len(w.run.logs) {
		return 0, 0, false
	}
	digits := rest[i+1:]
	if len(digits) == 0 || len(digits) > 19 {
		return 0, 0, false
	}
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, 0, false
		}
		seq = seq*10 + uint64(d-'0')
	}
	// A seq the writer never issued is not its write; taking it would
	// also let a stray key grow the bitset without bound.
	if seq >= w.run.logs[writer].issued.Load() {
		return 0, 0, false
	}
	return writer, seq, true
}

func (w *watcher) flushDelays() {
	if w.nDelays > 0 {
		w.run.delays.add(w.id, w.delays[:w.nDelays])
		w.nDelays = 0
	}
}

// endReason reads the reason of an end event, {"resume_revision":R,
// "reason":"overflow"}.
func endReason(data []byte) string {
	c := jsonCursor{b: data}
	if c.consume('{') {
		for f, more := c.field(); more; f, more = c.field() {
			if string(f) == "reason" {
				if r, _ := c.str(); !c.bad && len(r) > 0 {
					return string(r)
				}
				break
			}
			c.skip()
		}
	}
	return "end"
}

func isDecimal(b []byte, v uint64) bool {
	c := jsonCursor{b: b}
	return c.uint() == v && c.end()
}

// tally counts, for one watcher, the acknowledged writes it delivered and
// missed, and the deliveries of writes that were never acknowledged.
func (w *watcher) tally(acked [][]uint64) (delivered, missed, unacked uint64) {
	for writer, ab := range acked {
		var seen []uint64
		if writer < len(w.seen) {
			seen = w.seen[writer]
		}
		for i, a := range ab {
			var s uint64
			if i < len(seen) {
				s = seen[i]
			}
			delivered += uint64(bits.OnesCount64(s & a))
			missed += uint64(bits.OnesCount64(a &^ s))
			unacked += uint64(bits.OnesCount64(s &^ a))
		}
		for i := len(ab); i < len(seen); i++ {
			unacked += uint64(bits.OnesCount64(seen[i]))
		}
	}
	return delivered, missed, unacked
}

// delaySink is the histogram of the delays of every watcher, in shards so
// that watchers flushing at once rarely wait for each other.
type delaySink struct {
	shards []delayShard
}

type delayShard struct {
	mu sync.Mutex
	h  *histogram
	_  [48]byte
}

func newDelaySink(n int) *delaySink {
	s := &delaySink{shards: make([]delayShard, n)}
	for i := range s.shards {
		s.shards[i].h = newHistogram()
	}
	return s
}

func (s *delaySink) add(id int, ds []int64) {
	sh := &s.shards[id%len(s.shards)]
	sh.mu.Lock()
	for _, d := range ds {
		sh.h.record(time.Duration(d))
	}
	sh.mu.Unlock()
}

// merged is every shard's delays in one histogram; for after the run.
func (s *delaySink) merged() *histogram {
	h := newHistogram()
	for i := range s.shards {
		h.merge(s.shards[i].h)
	}
	return h
}
