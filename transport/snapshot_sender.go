package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// snapshotSender sends a peer each MsgSnap with its data, one POST
// /raft/snapshot at a time, when the transport has a SnapshotSource. A
// transfer blocks this actor only, for as long as it keeps moving; the peer
// actor drops a MsgSnap that comes while one is in flight (busy), so the
// mailbox never holds a second one.
type snapshotSender struct {
	t    *HTTP
	life *peerLife // whose snapshotBusy the peer actor sets when it hands over a MsgSnap
	peer *peerRef
	url  string
	// ctx ends every transfer of this peer: the life's, which the peer
	// actor cancels when it stops or restarts.
	ctx context.Context
}

func newSnapshotSender(t *HTTP, life *peerLife, url string) *snapshotSender {
	return &snapshotSender{t: t, life: life, peer: life.peer, url: url, ctx: life.ctx}
}

// Receive implements actor.Actor.
func (s *snapshotSender) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case peerURLChanged:
		s.url = m.url
	case *raftpb.Message:
		s.send(m)
		s.life.done(m)
		s.life.snapshotBusy.Store(false)
	}
}

// send makes one transfer and reports its outcome to raft, as rafthttp's
// snapshotSender does.
func (s *snapshotSender) send(m *raftpb.Message) {
	start := time.Now()
	lg := s.t.lg.With(zap.Uint64("peer", s.peer.id),
		zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()))
	n, err := s.post(m, lg)
	if err != nil {
		s.peer.stats.snapsFailed.Add(1)
		lg.Warn("failed to send a snapshot", zap.Int64("bytes", n), zap.Duration("took", time.Since(start)), zap.Error(err))
		s.t.unreachable(m)
		return
	}
	s.peer.stats.snapsSent.Add(1)
	s.peer.stats.snapBytesSent.Add(uint64(n))
	lg.Info("sent a snapshot", zap.Int64("bytes", n), zap.Duration("took", time.Since(start)))
	s.t.cfg.Inbox(messages.ReportSnapshot{ID: s.peer.id, Status: raft.SnapshotFinish})
}

// post streams m and its data to the peer and returns the data bytes sent.
func (s *snapshotSender) post(m *raftpb.Message, lg *zap.Logger) (int64, error) {
	if s.url == "" {
		return 0, fmt.Errorf("no known URL for peer %d", s.peer.id)
	}
	frame, err := appendSized(nil, m)
	if err != nil {
		return 0, err
	}
	src, err := s.t.cfg.SnapshotSource(m)
	if err != nil {
		return 0, fmt.Errorf("open the snapshot data: %w", err)
	}
	if src == nil {
		return 0, errNoSnapshotData
	}
	body := newSnapshotBody(s.ctx, frame, src)
	postErr := s.do(body.pr)
	n, readErr, closeErr := body.finish()
	switch {
	case s.ctx.Err() != nil && postErr != nil:
		return n, fmt.Errorf("transfer abandoned: %w", postErr)
	case readErr != nil:
		// The POST failed for it: the peer got a body cut short.
		if s.t.cfg.Fatal != nil && body.panicked != nil {
			s.t.cfg.Fatal(messages.Fatal{Component: "transport", Err: readErr})
		}
		return n, readErr
	case postErr != nil:
		return n, postErr
	}
	if closeErr != nil {
		// The peer has all of it and raft has the message: only worth a word.
		lg.Warn("closing the sent snapshot's data failed", zap.Error(closeErr))
	}
	return n, nil
}

// do makes the POST and reads the answer. The client's connections have
// per-read and per-write deadlines: a transfer that keeps moving is never
// cut off, a stalled one ends within connWriteTimeout.
func (s *snapshotSender) do(body io.Reader) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url+pathSnapshot, body)
	if err != nil {
		return fmt.Errorf("request to %s: %w", s.url, err)
	}
	s.t.setHeaders(req.Header)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.life.snapshots.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound && string(bytes.TrimSpace(answer)) == ErrSnapshotNotServed.Error() {
		return fmt.Errorf("peer %d: %w", s.peer.id, ErrSnapshotNotServed)
	}
	return s.t.checkAnswer(s.peer.id, resp, answer)
}
