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
	peer   *peerRef
	kind   streamKind
	url    string
	cancel context.CancelFunc
	done   chan struct{}
}

func newStreamReader(t *HTTP, p *peerRef, kind streamKind, url string) *streamReader {
	return &streamReader{t: t, peer: p, kind: kind, url: url}
}

// Receive implements actor.Actor.
func (r *streamReader) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.start()
	case peerURLChanged:
		r.stop()
		r.url = m.url
		r.start()
	case *actor.Stopping:
		r.stop()
	}
}

func (r *streamReader) start() {
	if r.url == "" {
		return // the peer dials us; we cannot dial it
	}
	ctx, cancel := context.WithCancel(r.t.ctx)
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

// run dials and reads until ctx ends, redialling at redialInterval. It logs
// changes of state, not every failed attempt: a peer that is down would
// otherwise write ten lines a second.
func (r *streamReader) run(ctx context.Context, url string, done chan struct{}) {
	defer close(done)
	lg := r.t.lg.With(zap.String("peer", formatID(r.peer.id)), zap.Stringer("stream", r.kind))
	lastErr := ""
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		err := r.dialAndRead(ctx, url, lg)
		if ctx.Err() != nil || errors.Is(err, errRemovedByPeer) {
			return
		}
		if err.Error() != lastErr {
			lastErr = err.Error()
			lg.Warn("stream to peer unavailable; redialling", zap.Error(err))
		}
		wait.Reset(redialInterval)
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
	}
}

func (r *streamReader) dialAndRead(ctx context.Context, url string, lg *zap.Logger) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+r.kind.path()+formatID(r.t.cfg.ID), nil)
	if err != nil {
		return fmt.Errorf("stream request to %s: %w", url, err)
	}
	r.t.setHeaders(req.Header)
	req.Header.Set(hdrTo, formatID(r.peer.id))
	resp, err := r.t.streams.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		err := r.t.checkAnswer(r.peer.id, resp, body)
		switch resp.StatusCode {
		case http.StatusGone, http.StatusForbidden:
			return errRemovedByPeer
		case http.StatusNotFound:
			return fmt.Errorf("peer %x does not know this member yet: %w", r.peer.id, err)
		}
		if err == nil {
			err = fmt.Errorf("peer %x answered %s", r.peer.id, resp.Status)
		}
		return err
	}
	lg.Info("stream connected")
	r.peer.active.connected(time.Now())
	err = r.read(bufio.NewReaderSize(resp.Body, 64<<10))
	r.peer.active.disconnected()
	if ctx.Err() == nil {
		lg.Info("stream ended", zap.Error(err))
	}
	return fmt.Errorf("stream ended: %w", err)
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
