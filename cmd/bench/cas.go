package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// errRevisions is returned when a client could not read its key's revision
// before the timed phase of cas or txn.
var errRevisions = errors.New("reading the keys' revisions failed")

// Header values shared, read-only, by every conditional write.
var (
	userAgent   = []string{"raftkv-bench"}
	octetStream = []string{"application/octet-stream"}
	jsonType    = []string{"application/json"}
)

// casLoop is the timed phase of a cas client: PUT its key with If-Match:
// "<the revision it last saw the key at>", a new value each time, and take
// the next revision from the answer (a 200's "revision", a 412's ETag).
//
// With one client per key, a 412 means that something else wrote the key
// or that the node answered a wrong revision: an error of its own kind.
// With --contention, 412s are the expected losses of a race and are
// completed operations, kept in w.refused.
func (w *worker) casLoop(ctl *control) {
	now := time.Now()
	for ctl.claim(now) {
		if w.stale {
			if o, status := w.readRevision(); o != outcomeOK {
				w.writes.add(o, status, 0)
				ctl.done(o)
				now = time.Now()
				continue
			}
		}
		req := w.casRequest()
		start := time.Now()
		status, header, body, ok := w.send(req)
		now = time.Now()
		lat := now.Sub(start)
		o := outcomeOf(status, ok)
		switch {
		case ok && status == http.StatusOK:
			if rev, found := topUint(body, "revision"); found && rev > 0 {
				w.rev, o = rev, outcomeOK
			}
		case ok && status == http.StatusPreconditionFailed:
			o = outcomeConflict
			if rev, found := etagRevision(header); found {
				w.rev = rev
			} else {
				// The key is gone: a PUT with If-Match can never
				// succeed again; reading it will say so as a 404.
				w.stale = true
			}
		}
		w.stale = w.stale || uncertain(o)
		if o == outcomeConflict && w.refused != nil {
			w.refused.add(outcomeOK, status, lat)
			ctl.done(outcomeOK)
			continue
		}
		w.writes.add(o, status, lat)
		ctl.done(o)
	}
}

// casRequest is a PUT of the client's key, conditional on its last known
// revision, with a value no earlier PUT of the client sent.
func (w *worker) casRequest() *http.Request {
	w.path = w.names.appendSpaceKey(append(w.path[:0], kvPath...), w.casKey)
	header := http.Header{
		"User-Agent":   userAgent,
		"Content-Type": octetStream,
		"If-Match":     {string(appendETag(nil, w.rev))},
	}
	// A fresh value: the transport may still read a request's body after
	// it returned an answer, so the buffer is never reused.
	value := stampValue(w.value, w.seq)
	w.seq++
	return newCall(w.base, header, http.MethodPut, string(w.path), "", value)
}

// readRevision reads the ETag of the client's key (cas) or of its first key
// (txn), where an absent key is at revision 0 for txn's compare. It returns
// what the read came to, and its status; after outcomeOK the revision is
// known again.
func (w *worker) readRevision() (outcome, int) {
	w.path = append(w.path[:0], kvPath...)
	if w.cmd == cmdCAS {
		w.path = w.names.appendSpaceKey(w.path, w.casKey)
	} else {
		w.path = w.names.appendPutKey(w.path, w.id, 0)
	}
	req := newCall(w.base, w.getHeader, http.MethodGet, string(w.path), "", nil)
	status, header, _, ok := w.send(req)
	switch {
	case ok && status == http.StatusOK:
		rev, found := etagRevision(header)
		if !found {
			return outcomeBadReply, status
		}
		w.rev = rev
	case ok && status == http.StatusNotFound && w.cmd == cmdTxn:
		w.rev = 0
	case ok:
		return classify(status, 0, -1), status
	default:
		return outcomeTransport, status
	}
	w.stale = false
	return outcomeOK, status
}

// readRevisions has every client read its key's revision once, before the
// timed phase; any failure stops the run, since the conditional writes
// that follow would fail for a reason the benchmark caused.
func readRevisions(ctx context.Context, workers []*worker) error {
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for _, w := range workers {
		wg.Go(func() {
			if ctx.Err() != nil {
				return
			}
			if o, status := w.readRevision(); o != outcomeOK {
				once.Do(func() {
					firstErr = fmt.Errorf("%w: client %d via %s: %s (status %d)", errRevisions, w.id, w.base, o, status)
				})
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: interrupted: %w", errRevisions, err)
	}
	return nil
}

// etagRevision reads the revision of a strong ETag, "R".
func etagRevision(h http.Header) (uint64, bool) {
	v := h.Get("Etag")
	if len(v) < 3 || v[0] != '"' || v[len(v)-1] != '"' {
		return 0, false
	}
	rev, err := strconv.ParseUint(v[1:len(v)-1], 10, 64)
	return rev, err == nil && rev > 0
}

func appendETag(dst []byte, rev uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, rev, 10)
	return append(dst, '"')
}

// stampValue is a copy of tmpl with seq written over its first bytes, so
// that successive writes of a key differ.
func stampValue(tmpl []byte, seq uint64) []byte {
	v := make([]byte, len(tmpl))
	copy(v, tmpl)
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], seq, 10)
	copy(v, d)
	return v
}

func (o outcome) String() string {
	switch o {
	case outcomeOK:
		return "ok"
	case outcomeUnavailable:
		return "503 no leader"
	case outcomeTimeout:
		return "504 timeout"
	case outcomeStatus:
		return "unexpected status"
	case outcomeTransport:
		return "no answer"
	case outcomeBadReply:
		return "bad reply"
	case outcomeConflict:
		return "precondition failed"
	case outcomeShort:
		return "short range"
	}
	return "outcome " + strconv.Itoa(int(o))
}
