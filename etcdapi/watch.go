package etcdapi

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // the codec WatchCodec wraps
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/watch"
)

// watchServer is etcd's Watch service, served by the watch hub as the HTTP
// API's watches are (package watch): one gRPC stream carries many
// watchers, each a watch.Stream read by a goroutine of its own, and every
// response of the stream goes out under one lock, in the order etcd's
// clients need: a watcher's created response before its events, its
// events before its canceled response, the fragments of one response one
// after the other, and a progress response for the whole stream only once
// every watcher sent everything through its revision.
//
// What differs from etcd, and why:
//   - compact_revision is the oldest revision that can still be watched
//     (the history's compacted revision + 1), so that a client resuming
//     from it succeeds;
//   - a watcher the hub ends because it fell behind (its queue overflowed)
//     or because a snapshot replaced the state is not canceled: it
//     continues from the history, from the first revision it did not get,
//     as etcd resynchronises a slow or restored watcher; only a watcher
//     the history no longer serves ends, with compact_revision set. A
//     member that stops ends the whole stream with "etcdserver: server
//     stopped" (Unavailable), as etcd's stopping server does, and
//     clientv3 resumes every watcher on another member;
//   - each revision's events are encoded once for all the member's gRPC
//     watchers that take them alike (watch.Events.Encoding), and each
//     watcher's response is its own header and id followed by those shared
//     bytes (WatchCodec sends them without copying).
type watchServer struct {
	pb.UnimplementedWatchServer
	s *Server
}

// invalidWatchID is clientv3.InvalidWatchID: the id of a create that
// failed, and of a progress response for every watcher of the stream.
const invalidWatchID = -1

// The reasons etcd's mvcc gives for refusing a watch, word for word.
const (
	reasonDuplicateID = "mvcc: duplicate watch ID provided on the WatchStream"
	reasonEmptyRange  = "mvcc: watcher range is empty"
)

// maxPendingProgress bounds the progress requests a stream holds until its
// watchers catch up; an older one is dropped, answered by a newer one.
const maxPendingProgress = 64

// maxBatchBytes bounds the events of revisions put in one response: a
// busy watcher's revisions go out in few responses, not one each.
const maxBatchBytes = 1 << 20

// Watch serves one gRPC stream of watches.
func (ws *watchServer) Watch(stream pb.Watch_WatchServer) error {
	s := ws.s
	if s.cfg.Watch == nil || s.cfg.Root == nil {
		return status.Error(codes.Unavailable, "etcdserver: watch not configured on this member")
	}
	limit := s.cfg.MaxRequestBytes
	if limit <= 0 {
		limit = 3 << 19
	}
	w := &wstream{
		s:        s,
		grpc:     stream,
		ctx:      stream.Context(),
		limit:    limit + grpcOverheadBytes,
		watchers: make(map[int64]*watcher),
		fail:     make(chan struct{}),
		quit:     make(chan struct{}),
	}
	return w.serve()
}

// wstream is one gRPC stream of watches.
type wstream struct {
	s     *Server
	grpc  pb.Watch_WatchServer
	ctx   context.Context
	limit int // a fragmenting watcher's responses stay below it

	// mu guards what follows and every send on the stream.
	mu       sync.Mutex
	watchers map[int64]*watcher
	nextID   int64
	// pending is the revisions of the progress requests not answered
	// yet, oldest first: each is answered once every watcher covers it.
	pending []uint64
	closed  bool // the stream is ending: nothing more is sent

	wg       sync.WaitGroup // the watchers' goroutines
	fail     chan struct{}  // closed to end the stream with failErr
	failOnce sync.Once
	failErr  error
	quit     chan struct{} // closed when serve returns
}

// watcher is one watch of a stream.
type watcher struct {
	id   int64
	opts watchOptions
	// st is the hub's stream serving it; its goroutine replaces it when
	// it continues from the history. Guarded by wstream.mu.
	st     *watch.Stream
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutine returned
	// covered is the revision through which everything it takes was
	// sent; sentEvents says events were sent since its last progress
	// mark (etcd then skips the next progress notification).
	covered    uint64
	sentEvents bool
	canceled   bool // a cancel request took it: the canceled response is the main loop's
	// ended: its last response (compacted) was sent. Its id stays taken
	// until the client cancels it, as etcd's does.
	ended bool
}

// watchOptions is what a create request asks.
type watchOptions struct {
	filter         watch.Filter
	start          uint64
	prevKV         bool
	noPut          bool
	noDelete       bool
	progressNotify bool
	fragment       bool
}

func (w *wstream) serve() error {
	defer w.shutdown()
	reqc := make(chan *pb.WatchRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := w.grpc.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqc <- req:
			case <-w.quit:
				return
			}
		}
	}()
	for {
		select {
		case req := <-reqc:
			w.handle(req)
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				// The client closed its side: etcd serves the
				// watches on until the stream ends.
				reqc = nil
				continue
			}
			if w.ctx.Err() != nil {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-w.ctx.Done():
			return rpctypes.ErrGRPCWatchCanceled
		case <-w.fail:
			return w.failErr
		}
	}
}

// shutdown stops every watcher and waits for their goroutines.
func (w *wstream) shutdown() {
	close(w.quit)
	w.mu.Lock()
	w.closed = true
	for _, wt := range w.watchers {
		if wt.cancel != nil {
			wt.cancel()
		}
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// failWith ends the stream with err.
func (w *wstream) failWith(err error) {
	w.failOnce.Do(func() {
		w.failErr = err
		close(w.fail)
	})
}

func (w *wstream) handle(req *pb.WatchRequest) {
	switch r := req.RequestUnion.(type) {
	case *pb.WatchRequest_CreateRequest:
		if r.CreateRequest != nil {
			w.create(r.CreateRequest)
		}
	case *pb.WatchRequest_CancelRequest:
		if r.CancelRequest != nil {
			w.cancelWatch(r.CancelRequest.WatchId)
		}
	case *pb.WatchRequest_ProgressRequest:
		if r.ProgressRequest != nil {
			w.progressAll()
		}
	default:
		// As etcd: an unknown request does not end the stream.
		w.s.log.Debug("unknown watch request on a gRPC stream")
	}
}

// create opens a watch, as etcd's: a created response (Created, the id,
// the current revision), or one that also says Canceled with the reason
// and the id -1 when it cannot be made.
func (w *wstream) create(cr *pb.WatchCreateRequest) {
	key := cr.Key
	if len(key) == 0 {
		key = []byte{0} // the smallest key, as etcd reads an empty one
	}
	if cr.StartRevision < 0 {
		w.refuse(rpctypes.ErrCompacted.Error())
		return
	}
	f, ok := watchFilter(key, cr.RangeEnd)
	if !ok {
		w.refuse(reasonEmptyRange)
		return
	}
	o := watchOptions{filter: f, start: uint64(cr.StartRevision), prevKV: cr.PrevKv,
		progressNotify: cr.ProgressNotify, fragment: cr.Fragment}
	for _, ft := range cr.Filters {
		switch ft {
		case pb.WatchCreateRequest_NOPUT:
			o.noPut = true
		case pb.WatchCreateRequest_NODELETE:
			o.noDelete = true
		}
	}

	w.mu.Lock()
	id := cr.WatchId
	if id == clientAutoWatchID || id < 0 {
		for w.watchers[w.nextID] != nil {
			w.nextID++
		}
		id = w.nextID
		w.nextID++
	} else if w.watchers[id] != nil {
		w.mu.Unlock()
		w.refuse(reasonDuplicateID)
		return
	}
	w.mu.Unlock()
	// Only this goroutine adds watchers: id stays free meanwhile.

	st, err := w.open(o, o.start)
	var compacted *messages.CompactedError
	switch {
	case err == nil:
	case errors.As(err, &compacted):
		// As etcd's: created, then compacted.
		rev := w.currentRevision()
		w.mu.Lock()
		defer w.mu.Unlock()
		wt := &watcher{id: id, opts: o, ended: true}
		w.watchers[id] = wt
		if w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, rev), WatchId: id, Created: true}) {
			w.sendLocked(compactedResponse(w.s.header(w.ctx, rev), id, compacted))
		}
		return
	case errors.Is(err, messages.ErrStopped):
		w.failWith(rpctypes.ErrGRPCStopped)
		return
	default:
		w.refuse(reasonOf(err))
		return
	}

	ctx, cancel := context.WithCancel(w.ctx)
	wt := &watcher{id: id, opts: o, st: st, cancel: cancel, done: make(chan struct{}), covered: st.Covered()}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		cancel()
		st.Close()
		return
	}
	w.watchers[id] = wt
	if !w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, st.Revision()), WatchId: id, Created: true}) {
		delete(w.watchers, id)
		cancel()
		st.Close()
		return
	}
	w.wg.Add(1)
	go w.run(ctx, wt, st)
}

// clientAutoWatchID is clientv3.AutoWatchID: the server picks the id.
const clientAutoWatchID = 0

// refuse answers a create that cannot be made.
func (w *wstream) refuse(reason string) {
	rev := w.currentRevision()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, rev), WatchId: invalidWatchID,
		Created: true, Canceled: true, CancelReason: reason})
}

// reasonOf is the cancel reason of err: the message of its gRPC answer,
// which clientv3 turns back into its error.
func reasonOf(err error) string {
	return status.Convert(toStatus(err)).Message()
}

func compactedResponse(h *pb.ResponseHeader, id int64, c *messages.CompactedError) *pb.WatchResponse {
	// etcd's compact_revision is the oldest revision a watch may start
	// from; the history's Compacted is the newest it no longer holds.
	return &pb.WatchResponse{Header: h, WatchId: id, Canceled: true, CompactRevision: int64(c.Compacted + 1)}
}

// currentRevision is the hub's revision, 0 if it cannot say.
func (w *wstream) currentRevision() uint64 {
	rev, err := watch.Progress(w.s.cfg.Root, w.s.cfg.Watch, w.s.cfg.Timeout)
	if err != nil {
		return 0
	}
	return rev
}

func (w *wstream) open(o watchOptions, start uint64) (*watch.Stream, error) {
	return watch.Open(watch.StreamConfig{
		Root:    w.s.cfg.Root,
		Hub:     w.s.cfg.Watch,
		History: w.s.cfg.History,
		Filter:  o.filter,
		Start:   start,
		PrevKV:  o.prevKV,
		Timeout: w.s.cfg.Timeout,
	})
}

// watchFilter is the hub's filter of etcd's key and range_end; false for
// an empty range.
func watchFilter(key, end []byte) (watch.Filter, bool) {
	k := string(key)
	switch {
	case len(end) == 0:
		return watch.Filter{Key: k}, true
	case string(end) == watch.RangeEndAll:
		if k == "\x00" {
			return watch.Filter{Prefix: true}, true // every key
		}
		if prefixEnd(k) == watch.RangeEndAll {
			return watch.Filter{Key: k, Prefix: true}, true // every key from "\xff..." on is under it
		}
		return watch.Filter{Key: k, End: watch.RangeEndAll}, true
	case k >= string(end):
		return watch.Filter{}, false
	case string(end) == prefixEnd(k):
		return watch.Filter{Key: k, Prefix: true}, true
	}
	return watch.Filter{Key: k, End: string(end)}, true
}

// prefixEnd is the range end of the keys under prefix, as clientv3's
// WithPrefix makes it: "\x00" when no key is past them all.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return watch.RangeEndAll
}

// cancelWatch answers a cancel request as etcd's: Canceled for a watch
// of the stream, nothing for an unknown id.
func (w *wstream) cancelWatch(id int64) {
	w.mu.Lock()
	wt := w.watchers[id]
	if wt == nil {
		w.mu.Unlock()
		return
	}
	wt.canceled = true
	delete(w.watchers, id)
	w.mu.Unlock()
	if wt.cancel != nil {
		wt.cancel()
		<-wt.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, wt.covered), WatchId: id, Canceled: true}) {
		w.checkProgressLocked()
	}
}

// progressAll answers a progress request as etcd 3.5+ does: one response
// with the id -1 and the current revision, once every watcher of the
// stream sent everything through it. Each watcher's stream gets a
// progress mark from the hub, so that an idle one covers the revision
// without waiting for the hub's periodic marks.
func (w *wstream) progressAll() {
	w.mu.Lock()
	asked := make(map[*watch.Stream]bool, len(w.watchers))
	sts := make([]*watch.Stream, 0, len(w.watchers))
	for _, wt := range w.watchers {
		if wt.st != nil && !wt.ended {
			asked[wt.st] = true
			sts = append(sts, wt.st)
		}
	}
	w.mu.Unlock()
	rev, err := watch.Progress(w.s.cfg.Root, w.s.cfg.Watch, w.s.cfg.Timeout, sts...)
	if err != nil {
		w.s.log.Debug("watch progress request not answered", zap.Error(err))
		return
	}
	w.mu.Lock()
	if len(w.pending) == maxPendingProgress {
		w.pending = w.pending[1:]
	}
	w.pending = append(w.pending, rev)
	// A watcher that continued on a new stream meanwhile asks for its
	// own mark: it may have opened before the request was pending.
	var again []*watch.Stream
	for _, wt := range w.watchers {
		if wt.st != nil && !wt.ended && !asked[wt.st] {
			again = append(again, wt.st)
		}
	}
	w.checkProgressLocked()
	w.mu.Unlock()
	if len(again) > 0 {
		_, _ = watch.Progress(w.s.cfg.Root, w.s.cfg.Watch, w.s.cfg.Timeout, again...)
	}
}

// checkProgressLocked sends the progress responses that every watcher
// covers now.
func (w *wstream) checkProgressLocked() {
	if len(w.pending) == 0 {
		return
	}
	covered := uint64(math.MaxUint64)
	for _, wt := range w.watchers {
		if !wt.ended {
			covered = min(covered, wt.covered)
		}
	}
	for len(w.pending) > 0 && w.pending[0] <= covered {
		rev := w.pending[0]
		w.pending = w.pending[1:]
		if !w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, rev), WatchId: invalidWatchID}) {
			return
		}
	}
}

func (w *wstream) progressPending() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) > 0
}

// sendLocked sends m; false (and the stream ends) if it could not.
func (w *wstream) sendLocked(m any) bool {
	if w.closed {
		return false
	}
	if err := w.grpc.SendMsg(m); err != nil {
		w.closed = true
		w.failWith(err)
		return false
	}
	return true
}

// run serves one watcher: what its hub stream has, as responses.
func (w *wstream) run(ctx context.Context, wt *watcher, st *watch.Stream) {
	defer w.wg.Done()
	defer close(wt.done)
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	if w.progressPending() {
		_, _ = watch.Progress(w.s.cfg.Root, w.s.cfg.Watch, w.s.cfg.Timeout, st)
	}
	var (
		items []watch.Item
		err   error
		b     = batch{w: w, wt: wt}
	)
	for {
		items, err = st.Next(ctx, items[:0])
		if err != nil {
			if ctx.Err() == nil {
				w.end(wt, err)
			}
			return
		}
		var end *watch.Item
		w.mu.Lock()
		if w.closed || wt.canceled {
			w.mu.Unlock()
			return
		}
		ok := true
		for i := range items {
			it := &items[i]
			switch it.Kind {
			case watch.KindEvents:
				ok = b.add(it.Events)
			case watch.KindProgress:
				ok = b.flush()
				if ok && wt.opts.progressNotify && !wt.sentEvents {
					// etcd's progress notification: this watcher's id,
					// no events, the revision it covers.
					ok = w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, it.Revision), WatchId: wt.id})
				}
				wt.sentEvents = false
			case watch.KindEnd:
				end = it
			}
			if !ok {
				break
			}
		}
		if ok && b.flush() {
			wt.covered = st.Covered()
			w.checkProgressLocked()
		}
		w.mu.Unlock()
		if !ok {
			return
		}
		if end != nil {
			if end.Reason == watch.ReasonStopping {
				w.failWith(rpctypes.ErrGRPCStopped)
				return
			}
			// Fell behind (overflow) or the state was replaced (reset):
			// continue from the history, from the first revision not
			// sent, as etcd resynchronises its slow or restored watchers.
			resume, reason := end.Revision, end.Reason
			w.s.log.Debug("gRPC watcher continues from the history", zap.String("reason", reason),
				zap.Uint64("resume", resume), redact.Key(wt.opts.filter.Key))
			st.Close()
			next, err := w.open(wt.opts, resume)
			if err != nil {
				if errors.Is(err, messages.ErrStopped) {
					w.failWith(rpctypes.ErrGRPCStopped)
					return
				}
				st = nil
				w.end(wt, err)
				return
			}
			st = next
			w.mu.Lock()
			wt.st = st
			w.mu.Unlock()
			if w.progressPending() {
				_, _ = watch.Progress(w.s.cfg.Root, w.s.cfg.Watch, w.s.cfg.Timeout, st)
			}
		}
		clear(items) // the events are shared: let them go
	}
}

// end sends a watcher's last response, after err ended its stream: with
// compact_revision when the history no longer serves it, else canceled
// with the reason.
func (w *wstream) end(wt *watcher, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || wt.canceled {
		return
	}
	wt.st = nil
	var compacted *messages.CompactedError
	if errors.As(err, &compacted) {
		wt.ended = true
		w.sendLocked(compactedResponse(w.s.header(w.ctx, wt.covered), wt.id, compacted))
	} else {
		w.s.log.Debug("gRPC watcher ended", zap.Error(err))
		delete(w.watchers, wt.id)
		w.sendLocked(&pb.WatchResponse{Header: w.s.header(w.ctx, wt.covered), WatchId: wt.id,
			Canceled: true, CancelReason: reasonOf(err)})
	}
	w.checkProgressLocked()
}

// batch gathers a watcher's events into responses: revisions one after
// the other up to maxBatchBytes (a revision is never split, except into
// fragments for a watcher that asked for them).
type batch struct {
	w     *wstream
	wt    *watcher
	parts [][]byte // events fields of the response being made
	size  int
	rev   uint64 // of its last events
}

// add adds one revision's events; false if the stream failed.
func (b *batch) add(evs *watch.Events) bool {
	enc := evs.Encoding(watch.EncodingGRPC, encodeEvents).(*encodedEvents)
	n := b.size
	before := len(b.parts)
	b.parts = enc.appendParts(b.parts, b.wt.opts)
	for _, p := range b.parts[before:] {
		b.size += len(p)
	}
	if b.size == n {
		return true // the filters took none
	}
	b.rev = evs.Revision
	if b.size >= min(maxBatchBytes, b.w.limit) {
		return b.flush()
	}
	return true
}

// flush sends the response being made.
func (b *batch) flush() bool {
	if len(b.parts) == 0 {
		return true
	}
	parts, size := b.parts, b.size
	b.parts, b.size = b.parts[:0:0], 0
	b.wt.sentEvents = true
	h := b.w.s.header(b.w.ctx, b.rev)
	if !b.wt.opts.fragment {
		return b.w.sendLocked(newRawResponse(h, b.wt.id, false, parts))
	}
	return sendFragments(h, b.wt.id, parts, size, b.w.limit, b.w.sendLocked)
}

// sendFragments sends a response as etcd's sendFragments does: whole when
// it is below limit or holds one event, else in fragments below limit
// (each with one event at least), all but the last marked Fragment.
func sendFragments(h *pb.ResponseHeader, id int64, events [][]byte, size, limit int, send func(any) bool) bool {
	head := len(responseHead(h, id, false))
	if head+size < limit || countEvents(events) < 2 {
		return send(newRawResponse(h, id, false, events))
	}
	evs := splitEvents(events)
	for len(evs) > 0 {
		n, sz := 1, head+2+len(evs[0]) // 2: the Fragment field
		for n < len(evs) && sz+len(evs[n]) < limit {
			sz += len(evs[n])
			n++
		}
		if !send(newRawResponse(h, id, n < len(evs), evs[:n])) {
			return false
		}
		evs = evs[n:]
	}
	return true
}

// splitEvents cuts runs of events fields into one slice per event.
func splitEvents(parts [][]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		for len(p) > 0 {
			n := eventFieldLen(p)
			out = append(out, p[:n:n])
			p = p[n:]
		}
	}
	return out
}

func countEvents(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		for len(p) > 0 && n < 2 {
			p = p[eventFieldLen(p):]
			n++
		}
	}
	return n
}

// eventFieldLen is the length of the events field that b starts with.
func eventFieldLen(b []byte) int {
	_, _, n := protowire.ConsumeField(b)
	if n < 0 {
		return len(b) // not ours: cannot happen
	}
	return n
}

// encodedEvents is a revision's events as fields 11 (events) of a
// WatchResponse, made once and shared by every gRPC watcher that takes
// the revision alike.
type encodedEvents struct {
	buf  []byte
	ends []int // where each event's field ends in buf
	puts []bool
}

// encodeEvents is watch.Events' gRPC encoding.
func encodeEvents(e *watch.Events) any {
	enc := &encodedEvents{ends: make([]int, 0, len(e.List)), puts: make([]bool, 0, len(e.List))}
	for _, ev := range e.List {
		m := &mvccpb.Event{Kv: keyValue(ev.KV)}
		if ev.Type == messages.EventDelete {
			m.Type = mvccpb.Event_DELETE
		}
		if e.PrevKV && ev.Prev != nil {
			m.PrevKv = keyValue(*ev.Prev)
		}
		enc.buf = protowire.AppendTag(enc.buf, 11, protowire.BytesType)
		enc.buf = protowire.AppendVarint(enc.buf, uint64(proto.Size(m)))
		enc.buf, _ = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(enc.buf, m)
		enc.ends = append(enc.ends, len(enc.buf))
		enc.puts = append(enc.puts, ev.Type != messages.EventDelete)
	}
	return enc
}

// appendParts appends the events o's filters take, as runs of the shared
// bytes.
func (enc *encodedEvents) appendParts(parts [][]byte, o watchOptions) [][]byte {
	if !o.noPut && !o.noDelete {
		if len(enc.buf) > 0 {
			parts = append(parts, enc.buf)
		}
		return parts
	}
	start, runStart := 0, -1
	for i, end := range enc.ends {
		take := (enc.puts[i] && !o.noPut) || (!enc.puts[i] && !o.noDelete)
		switch {
		case take && runStart < 0:
			runStart = start
		case !take && runStart >= 0:
			parts = append(parts, enc.buf[runStart:start:start])
			runStart = -1
		}
		start = end
	}
	if runStart >= 0 {
		parts = append(parts, enc.buf[runStart:start:start])
	}
	return parts
}

// rawResponse is a WatchResponse already encoded, in parts: the head (the
// watcher's own fields), then the events fields shared with other
// watchers. WatchCodec sends the parts as they are; any other codec of
// protocol buffers takes it through Marshal, as a message of the older
// protobuf API.
type rawResponse struct {
	parts [][]byte
}

func newRawResponse(h *pb.ResponseHeader, id int64, fragment bool, events [][]byte) *rawResponse {
	parts := make([][]byte, 0, 1+len(events))
	parts = append(parts, responseHead(h, id, fragment))
	return &rawResponse{parts: append(parts, events...)}
}

// responseHead encodes a WatchResponse's header, watch_id and fragment.
func responseHead(h *pb.ResponseHeader, id int64, fragment bool) []byte {
	b := make([]byte, 0, 64)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(proto.Size(h)))
	b, _ = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, h)
	if id != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id))
	}
	if fragment {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return b
}

// Reset, String and ProtoMessage make rawResponse a message of the older
// protobuf API, which protobuf's codec marshals with Marshal.
func (r *rawResponse) Reset()         { r.parts = nil }
func (r *rawResponse) String() string { return "etcdserverpb.WatchResponse (encoded)" }
func (*rawResponse) ProtoMessage()    {}

// Marshal returns the response's bytes in one piece.
func (r *rawResponse) Marshal() ([]byte, error) {
	n := 0
	for _, p := range r.parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range r.parts {
		b = append(b, p...)
	}
	return b, nil
}

// WatchCodec is the server option that sends the Watch service's encoded
// responses without copying their shared events: gRPC's protobuf codec
// for every other message. A server without it sends them too, copied
// into one piece first.
func WatchCodec() grpc.ServerOption {
	return grpc.ForceServerCodecV2(watchCodec{proto: encoding.GetCodecV2("proto")})
}

type watchCodec struct{ proto encoding.CodecV2 }

func (c watchCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*rawResponse)
	if !ok {
		return c.proto.Marshal(v)
	}
	out := make(mem.BufferSlice, len(r.parts))
	for i, p := range r.parts {
		out[i] = mem.SliceBuffer(p)
	}
	return out, nil
}

func (c watchCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }
func (c watchCodec) Name() string                                { return c.proto.Name() }
