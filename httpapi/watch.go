package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

const watchPrefix = "/v1/watch/"

// errWatchNotConfigured answers a watch on a handler given no watch hub.
var errWatchNotConfigured = errors.New("watch not configured on this member")

// endWriteGrace bounds what a stream still writes once the hub ended it:
// the events queued before the end, then the end. A client that does not
// read that long is cut off; its Last-Event-ID still resumes it exactly.
const endWriteGrace = 2 * time.Second

// keptWriteBuffer is the largest write buffer a stream keeps between
// writes; a larger one, made for a burst, goes back to the heap.
const keptWriteBuffer = 1 << 20

// A busy stream's writes are paced: what comes within the gap after a
// write joins the next one. Each write is a syscall on the member and a
// wake-up of the client, and with many watchers of a busy prefix writing
// every apply's events at once costs the member more than the bytes. The
// gap grows with the member's open watches, watchWriteCost each, up to
// maxWatchWriteGap: the streams together make at most about 50,000 writes
// a second, and a lone watcher's events are not delayed. A quiet stream,
// whose last write is older than the gap, writes at once.
const (
	watchWriteCost   = 20 * time.Microsecond
	maxWatchWriteGap = 20 * time.Millisecond
)

func watchWriteGap(watchers int) time.Duration {
	return min(time.Duration(watchers)*watchWriteCost, maxWatchWriteGap)
}

// serveWatch serves GET /v1/watch/<key>: a stream of Server-Sent Events,
// one per revision that changes the watched keys (docs/api.md, "Watch").
func (h *handler) serveWatch(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, getOnly)
		return
	}
	wr, err := h.watchParams(r)
	if err != nil {
		refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if h.watch == nil || h.root == nil {
		h.fail(w, r, errWatchNotConfigured, false)
		return
	}
	rc := http.NewResponseController(w)
	// When the hub ends the stream, the writes still to come get a
	// deadline, so that a client that stopped reading cannot keep the
	// handler (and a graceful shutdown) waiting. The hub only cancels a
	// context; setting the deadline, which may wait on an HTTP/2
	// connection's goroutine, happens on a goroutine of its own, finished
	// before the handler returns.
	ended, endNow := context.WithCancel(context.Background())
	defer endNow()
	interrupted := make(chan struct{})
	stopInterrupt := context.AfterFunc(ended, func() {
		defer close(interrupted)
		_ = rc.SetWriteDeadline(time.Now().Add(endWriteGrace))
	})
	defer func() {
		if !stopInterrupt() {
			<-interrupted
			// The connection may serve another request: no deadline of
			// this stream's may reach it.
			_ = rc.SetWriteDeadline(time.Time{})
		}
	}()
	s, err := watch.Open(watch.StreamConfig{
		Root:    h.root,
		Hub:     h.watch,
		History: h.history,
		Filter:  wr.filter,
		Start:   wr.start,
		PrevKV:  wr.prevKV,
		OnEnd:   endNow,
		Timeout: h.timeout,
	})
	if err != nil {
		h.fail(w, r, err, false)
		return
	}
	defer s.Close()

	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx would otherwise hold the events back
	hd.Set("Raftkv-Revision", strconv.FormatUint(s.Revision(), 10))
	w.WriteHeader(http.StatusOK)
	buf := append(make([]byte, 0, 4096), "retry: 1000\n\n"...)
	if !h.writeEvents(w, rc, r, buf) {
		return
	}
	var items []watch.Item
	lastWrite := time.Now()
	for {
		items, err = s.Next(r.Context(), items[:0])
		if err != nil {
			h.streamEnded(r, err)
			return
		}
		if wait := watchWriteGap(s.Watchers()) - time.Since(lastWrite); wait > 0 && items[len(items)-1].Kind != watch.KindEnd {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ended.Done(): // the end is queued: write it now
			case <-r.Context().Done():
			}
			t.Stop()
			items = s.More(items)
		}
		// Everything queued goes out in one write and one flush: a busy
		// stream makes few large writes, not one per event.
		buf = buf[:0]
		for _, it := range items {
			buf = appendSSE(buf, it)
		}
		last := items[len(items)-1].Kind
		clear(items) // the events' bytes are the hub's, shared: let them go
		if !h.writeEvents(w, rc, r, buf) || last == watch.KindEnd {
			return
		}
		lastWrite = time.Now()
		if cap(buf) > keptWriteBuffer {
			buf = nil
		}
	}
}

// writeEvents writes and flushes; false means the client is gone.
func (h *handler) writeEvents(w http.ResponseWriter, rc *http.ResponseController, r *http.Request, b []byte) bool {
	if _, err := w.Write(b); err != nil {
		return false
	}
	if err := rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			h.log.Warn("watch stream on a response that cannot flush", redact.NamedKey("path", r.URL.Path))
		}
		return false
	}
	return true
}

// streamEnded logs why a stream stopped short of an end event: the
// client leaving is normal; the history compacted under a slow catch-up
// is the client's to resume (it gets 410 and where the history starts).
func (h *handler) streamEnded(r *http.Request, err error) {
	switch {
	case errors.Is(err, io.EOF), r.Context().Err() != nil:
	case errors.Is(err, messages.ErrCompacted):
		h.log.Debug("watch stream overtaken by the history's compaction", redact.NamedKey("path", r.URL.Path), zap.Error(err))
	default:
		h.log.Warn("watch stream failed", redact.NamedKey("path", r.URL.Path), zap.Error(err))
	}
}

// appendSSE appends one item as a Server-Sent Event. Every event but the
// end carries an id, the revision through which the stream is complete,
// so that a reconnecting EventSource resumes after it; the end's id is
// the revision before its resume_revision, for the same reason.
func appendSSE(b []byte, it watch.Item) []byte {
	switch it.Kind {
	case watch.KindEvents:
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, it.Revision, 10)
		b = append(b, "\ndata: "...)
		b = append(b, it.JSON()...)
	case watch.KindProgress:
		b = append(b, "event: progress\nid: "...)
		b = strconv.AppendUint(b, it.Revision, 10)
		b = append(b, "\ndata: {\"revision\":"...)
		b = strconv.AppendUint(b, it.Revision, 10)
		b = append(b, '}')
	case watch.KindEnd:
		b = append(b, "event: end\nid: "...)
		b = strconv.AppendUint(b, it.Revision-1, 10)
		b = append(b, "\ndata: {\"resume_revision\":"...)
		b = strconv.AppendUint(b, it.Revision, 10)
		b = append(b, ",\"reason\":"...)
		b = strconv.AppendQuote(b, it.Reason)
		b = append(b, '}')
	}
	return append(b, "\n\n"...)
}

// watchRequest is what a watch request asks.
type watchRequest struct {
	filter watch.Filter
	start  uint64 // 0: after the current revision
	prevKV bool
}

// watchParams reads what a watch request asks: the key (the rest of the
// path, named as under /v1/kv/), prefix=true|false, prev_kv=true|false, and
// where to start: Last-Event-ID (an EventSource reconnecting) resumes after
// its revision and wins over start_revision; neither, or start_revision=0
// as in etcd, starts after the current revision. Any other parameter is
// refused, so that a misspelt one (prev_kvs=true) does not open a stream
// that silently lacks what was asked.
func (h *handler) watchParams(r *http.Request) (watchRequest, error) {
	var wr watchRequest
	key, err := h.dialect.watchKey(r)
	if err != nil {
		return wr, err
	}
	q, err := queryParams(r.URL.RawQuery, "a watch", "prefix", "start_revision", "prev_kv")
	if err != nil {
		return wr, err
	}
	wr.filter.Key = key
	if wr.filter.Prefix, err = exactBool(q, "prefix"); err != nil {
		return wr, err
	}
	if wr.prevKV, err = exactBool(q, "prev_kv"); err != nil {
		return wr, err
	}
	if wr.filter.Key == "" && !wr.filter.Prefix {
		return wr, fmt.Errorf("%w: empty key: name a key, or watch every key with prefix=true", messages.ErrBadRequest)
	}
	if q.Has("start_revision") {
		v := q.Get("start_revision")
		if wr.start, err = strconv.ParseUint(v, 10, 64); err != nil {
			return wr, fmt.Errorf("%w: start_revision must be a revision, or 0 for now, not %s", messages.ErrBadRequest, echo(v))
		}
	}
	if v := strings.TrimSpace(r.Header.Get("Last-Event-ID")); v != "" {
		last, err := strconv.ParseUint(v, 10, 64)
		if err != nil || last == math.MaxUint64 {
			return wr, fmt.Errorf("%w: Last-Event-ID must be a revision, not %s", messages.ErrBadRequest, echo(v))
		}
		wr.start = last + 1
	}
	return wr, nil
}

// The key of /v1/watch/<key> is named as that of /v1/kv/<key>.

func (nativeDialect) watchKey(r *http.Request) (string, error) {
	return strings.TrimPrefix(r.URL.Path, watchPrefix), nil
}

func (raftexampleDialect) watchKey(r *http.Request) (string, error) {
	// As kvKey: the path as sent, and never repeated in an error, since
	// the rest of it is a key.
	rest, ok := strings.CutPrefix(sentPath(r), watchPrefix)
	if !ok {
		return "", fmt.Errorf("%w: the %s prefix must not be percent-encoded", messages.ErrBadRequest, watchPrefix)
	}
	if rest == "" {
		return "", nil // every key, with prefix=true
	}
	return "/" + rest, nil
}
