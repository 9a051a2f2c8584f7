package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// errRemovedByPeer ends a reader for good: the peer said this member was
// removed, and the member is stopping.
var errRemovedByPeer = errors.New("removed from the cluster")

// streamReader dials one stream of one peer and delivers what it reads to
// the inbox. Reading blocks, so it happens on a goroutine the actor owns:
// started on Started, replaced when the peer's URL changes, cancelled and
// waited for on Stopping.
type streamReader struct {
	t      *HTTP
	life   *peerLife
	peer   *peerRef
	kind   streamKind
	url    string
	self   *actor.PID
	cancel context.CancelFunc
	done   chan struct{}
}

func newStreamReader(t *HTTP, life *peerLife, kind streamKind, url string) *streamReader {
	return &streamReader{t: t, life: life, peer: life.peer, kind: kind, url: url}
}

// readerPanicked hands a panic of the reading goroutine to the reader
// actor: outside an actor, a panic would take the process down.
type readerPanicked struct{ reason any }

// Receive implements actor.Actor.
func (r *streamReader) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.self = ctx.Self()
		r.start()
	case peerURLChanged:
		r.stop()
		r.url = m.url
		r.start()
	case *actor.Stopping:
		r.stop()
	case readerPanicked:
		// Raised again on the actor's goroutine, where supervision takes
		// it as the reader's own: the peer actor restarts.
		panic(m.reason)
	}
}

func (r *streamReader) start() {
	if r.url == "" {
		return // the peer dials us; we cannot dial it
	}
	ctx, cancel := context.WithCancel(r.life.ctx)
	r.cancel, r.done = cancel, make(chan struct{})
	go r.run(ctx, r.url, r.done)
}

func (r *streamReader) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// unreachableWarnAfter is how long a peer that was never reached, or not
// since it was lost, stays unreachable before a warning says so.
const unreachableWarnAfter = 5 * time.Second

// run dials and reads until ctx ends, redialling at redialInterval. It logs
// changes of state, not every failed attempt: a peer that is down would
// otherwise write ten lines a second. For the operator, the message stream
// speaks for the peer, at info and warn: reached, lost, not reachable at
// all; the rest is at debug.
func (r *streamReader) run(ctx context.Context, url string, done chan struct{}) {
	defer close(done)
	defer func() {
		if v := recover(); v != nil {
			r.t.root.Send(r.self, readerPanicked{reason: v})
		}
	}()
	lg := r.t.lg.With(zap.Uint64("peer", r.peer.id), zap.Stringer("stream", r.kind))
	lastErr := ""
	warned := false    // since the last connection, or the start
	var down time.Time // when the failed dials began
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		connected, err := r.dialAndRead(ctx, url, lg)
		if ctx.Err() != nil || errors.Is(err, errRemovedByPeer) {
			return
		}
		if connected || down.IsZero() {
			lastErr, warned, down = "", false, time.Now()
		}
		switch {
		case r.kind == streamMessage && connected:
			lg.Warn("lost the connection to a peer; redialling", zap.Error(err))
			warned = true
		case r.kind == streamMessage && !warned && time.Since(down) >= unreachableWarnAfter:
			// Not at once: members of a cluster start one after another.
			lg.Warn("cannot reach a peer; redialling", zap.String("url", url),
				zap.Duration("for", time.Since(down).Round(time.Second)), zap.Error(err))
			warned = true
		case err.Error() != lastErr:
			lg.Debug("stream to peer unavailable; redialling", zap.Error(err))
		}
		lastErr = err.Error()
		wait.Reset(redialInterval)
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
	}
}

// dialAndRead dials the peer and reads the stream until it ends; connected
// says whether the stream was up.
func (r *streamReader) dialAndRead(ctx context.Context, url string, lg *zap.Logger) (connected bool, _ error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+r.kind.path()+formatID(r.t.cfg.ID), nil)
	if err != nil {
		return false, fmt.Errorf("stream request to %s: %w", url, err)
	}
	r.t.setHeaders(req.Header)
	req.Header.Set(hdrTo, formatID(r.peer.id))
	resp, err := r.life.streams.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		err := r.t.checkAnswer(r.peer.id, resp, body)
		switch resp.StatusCode {
		case http.StatusGone, http.StatusForbidden:
			return false, errRemovedByPeer
		case http.StatusNotFound:
			return false, fmt.Errorf("peer %d does not know this member yet: %w", r.peer.id, err)
		}
		if err == nil {
			err = fmt.Errorf("peer %d answered %s", r.peer.id, resp.Status)
		}
		return false, err
	}
	if r.kind == streamMessage {
		lg.Info("connected to a peer")
	} else {
		lg.Debug("stream connected")
	}
	err = r.readConnected(bufio.NewReaderSize(resp.Body, 64<<10))
	if ctx.Err() == nil {
		lg.Debug("stream ended", zap.Error(err))
	}
	return true, fmt.Errorf("stream ended: %w", err)
}

// readConnected reads while the peer counts as connected; a panic in read
// (which the reader hands to supervision) must not leave it counted.
func (r *streamReader) readConnected(br *bufio.Reader) error {
	r.peer.active.connected(time.Now())
	defer r.peer.active.disconnected()
	return r.read(br)
}

// read decodes frames until the stream ends or carries something malformed.
func (r *streamReader) read(br *bufio.Reader) error {
	var dec decoder = &messageDecoder{r: br}
	if r.kind == streamMsgApp {
		dec = &msgAppDecoder{r: br, local: r.t.cfg.ID, remote: r.peer.id, fastFrames: &r.peer.stats.fastFrames}
	}
	for {
		m, err := dec.decode()
		if err != nil {
			return err
		}
		if isLinkHeartbeat(m) {
			continue
		}
		deliver, err := r.t.checkAddressing(m, r.peer.id)
		if err != nil {
			return err
		}
		r.peer.stats.received[channelOf(r.kind)].Add(1)
		if deliver {
			r.t.cfg.Inbox(m)
		}
	}
}
