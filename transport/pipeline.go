package transport

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
)

// peerURLChanged gives a peer, and its children that dial, a new URL.
type peerURLChanged struct{ url string }

// pipeline sends one message per POST /raft, one at a time. It carries every
// MsgSnap, and everything else while no stream is attached. A POST blocks
// this actor only: the peer actor bounds what waits here
// (peerLife.pipelineQueued).
type pipeline struct {
	t    *HTTP
	life *peerLife
	peer *peerRef
	url  string
	buf  []byte
}

func newPipeline(t *HTTP, life *peerLife, url string) *pipeline {
	return &pipeline{t: t, life: life, peer: life.peer, url: url}
}

// Receive implements actor.Actor.
func (p *pipeline) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case peerURLChanged:
		p.url = m.url
	case *raftpb.Message:
		err := p.post(m)
		p.life.pipelineQueued.Add(-1)
		p.life.done(m)
		if err != nil {
			p.peer.stats.failed[chanPipeline].Add(1)
			p.t.lg.Debug("pipeline send failed", zap.Uint64("peer", p.peer.id),
				zap.Stringer("type", m.GetType()), zap.Error(err))
			p.t.unreachable(m)
			return
		}
		p.peer.stats.sent[chanPipeline].Add(1)
		if m.GetType() == raftpb.MsgSnap {
			p.peer.stats.snapsSent.Add(1)
			p.t.lg.Info("sent a snapshot", zap.Uint64("peer", p.peer.id),
				zap.Uint64("index", m.GetSnapshot().GetMetadata().GetIndex()))
			p.t.cfg.Inbox(messages.ReportSnapshot{ID: p.peer.id, Status: raft.SnapshotFinish})
		}
	}
}

func (p *pipeline) post(m *raftpb.Message) error {
	if p.url == "" {
		return fmt.Errorf("no known URL for peer %d", p.peer.id)
	}
	b, err := proto.MarshalOptions{}.MarshalAppend(p.buf[:0], m)
	if err != nil {
		return fmt.Errorf("marshal: %w", err)
	}
	if cap(b) <= 1<<20 {
		p.buf = b // keep small buffers only: a snapshot's would pin its memory
	}
	req, err := http.NewRequestWithContext(p.life.ctx, http.MethodPost, p.url+pathPipeline, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("request to %s: %w", p.url, err)
	}
	p.t.setHeaders(req.Header)
	req.Header.Set("Content-Type", "application/protobuf")
	resp, err := p.life.pipeline.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	return p.t.checkAnswer(p.peer.id, resp, body)
}

// checkAnswer turns a peer's answer into an error, and tells raft when the
// peer says we were removed: 410 from us and etcd's streams, 403 from etcd's
// pipeline.
// maxAnswerLog bounds the part of a peer's answer that goes into an error,
// and so into the log.
const maxAnswerLog = 256

func (t *HTTP) checkAnswer(peer uint64, resp *http.Response, body []byte) error {
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusGone, http.StatusForbidden:
		t.cfg.Inbox(messages.MemberRemoved{By: peer})
		return fmt.Errorf("peer %d says this member was removed from the cluster", peer)
	case http.StatusPreconditionFailed:
		reason := string(bytes.TrimSpace(body))
		switch reason {
		case ErrClusterIDMismatch.Error():
			return fmt.Errorf("peer %d: %w (ours %s, the peer's %s)", peer, ErrClusterIDMismatch,
				formatID(t.cfg.ClusterID), redact.Text(resp.Header.Get(hdrClusterID), 32))
		case ErrIncompatibleVersion.Error():
			return fmt.Errorf("peer %d: %w", peer, ErrIncompatibleVersion)
		}
		return fmt.Errorf("peer %d refused the request: %s", peer, redact.Text(reason, maxAnswerLog))
	default:
		return fmt.Errorf("peer %d answered %s: %s", peer, resp.Status, redact.Text(string(bytes.TrimSpace(body)), maxAnswerLog))
	}
}
