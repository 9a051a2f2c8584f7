package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/tlsfiles"
)

// HTTPConfig configures the network transport of one member.
type HTTPConfig struct {
	ID        uint64 // this member
	ClusterID uint64 // sent and checked on every request; raftexample uses 0x1000
	// URL is this member's advertised peer URL, sent in X-PeerURLs. It may
	// be empty.
	URL string
	// System runs the peer actors; it is the member's own actor system.
	System *actor.ActorSystem
	// Inbox takes what arrives for the local member (see the package doc).
	Inbox Inbox
	// TLS, when set, is the client side of TLS for https:// peer URLs:
	// the CAs that sign the peers' certificates and the certificate this
	// member presents, re-read when their files change. Nil dials
	// https:// URLs with the system's roots and no client certificate.
	TLS *tlsfiles.Client
	// SnapshotSource, when set, makes every MsgSnap go by POST
	// /raft/snapshot followed by the data it opens: the state machine's
	// db, which the MsgSnap itself no longer carries. Nil sends MsgSnap by
	// the pipeline with its data inline, as raftexample does.
	SnapshotSource SnapshotSource
	// SnapshotSink, when set, serves POST /raft/snapshot: it saves the
	// data that follows a peer's MsgSnap before the MsgSnap is delivered.
	// Nil answers that endpoint 404.
	SnapshotSink SnapshotSink
	// Fatal is told when a peer actor panics: a bug, which stops the
	// member rather than leaving a peer silently dead. May be nil.
	Fatal  func(messages.Fatal)
	Logger *zap.Logger
}

// HTTP is the network transport: etcd's rafthttp protocol, with one actor
// per peer. Send, AddPeer and RemovePeer may be called from any goroutine.
// Serve Handler on the member's peer URL.
type HTTP struct {
	cfg       HTTPConfig
	lg        *zap.Logger
	root      *actor.RootContext
	pipeline  *http.Client
	streams   *http.Client
	snapshots *http.Client
	// ctx is cancelled by Close: every dial and POST in flight ends with it.
	ctx    context.Context
	cancel context.CancelFunc
	closed chan struct{}
	// queueSize and pipelineSize are peerQueueSize and pipelineQueueSize;
	// fields so that this package's tests can fill a queue with a few
	// messages.
	queueSize, pipelineSize int64

	mu      sync.RWMutex
	peers   map[uint64]*peerRef
	removed map[uint64]bool
	stopped bool
}

// peerRef is what Send needs of a peer without asking its actor: where to
// post and how full its queue is.
type peerRef struct {
	id  uint64
	pid *actor.PID
	// queued counts messages accepted by Send that no child has finished
	// with (written or dropped). Send increments it, the children
	// decrement it: the bound of invariant 8 without a round trip.
	queued atomic.Int64
	stats  peerCounters
	active activity
}

// NewHTTP returns a transport with no peers; AddPeer adds them.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.ID == 0 || cfg.System == nil || cfg.Inbox == nil {
		return nil, errors.New("http transport needs a member id, an actor system and an inbox")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TLS == nil {
		var err error
		if cfg.TLS, err = tlsfiles.NewClient(tlsfiles.Files{}, cfg.Logger); err != nil {
			return nil, fmt.Errorf("http transport: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &HTTP{
		cfg:          cfg,
		lg:           cfg.Logger,
		root:         cfg.System.Root,
		pipeline:     newPeerClient(cfg.TLS, connReadTimeout),
		streams:      newPeerClient(cfg.TLS, connReadTimeout),
		snapshots:    newPeerClient(cfg.TLS, snapshotAnswerTimeout),
		ctx:          ctx,
		cancel:       cancel,
		closed:       make(chan struct{}),
		queueSize:    peerQueueSize,
		pipelineSize: pipelineQueueSize,
		peers:        make(map[uint64]*peerRef),
		removed:      make(map[uint64]bool),
	}, nil
}

// Send implements Transport. A message to a peer whose queue is full is
// dropped and reported, never waited for.
func (t *HTTP) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return
	}
	for _, m := range msgs {
		p, ok := t.peers[m.GetTo()]
		if !ok {
			t.lg.Debug("dropped a message to an unknown member", zap.Uint64("to", m.GetTo()), zap.Stringer("type", m.GetType()))
			continue
		}
		if p.queued.Add(1) > t.queueSize {
			p.queued.Add(-1)
			p.stats.queueFull.Add(1)
			t.lg.Warn("dropped a message: the peer's queue is full", zap.Uint64("to", m.GetTo()), zap.Stringer("type", m.GetType()))
			t.unreachable(m)
			continue
		}
		t.root.Send(p.pid, m)
	}
}

// unreachable tells raft that m was not delivered.
func (t *HTTP) unreachable(m *raftpb.Message) {
	t.cfg.Inbox(messages.ReportUnreachable{ID: m.GetTo()})
	if m.GetType() == raftpb.MsgSnap {
		t.cfg.Inbox(messages.ReportSnapshot{ID: m.GetTo(), Status: raft.SnapshotFailure})
	}
}

// AddPeer implements Transport. An empty URL makes the member known (its
// streams to us are accepted, and we send through them) without our dialing
// it.
func (t *HTTP) AddPeer(id uint64, peerURL string) {
	if id == t.cfg.ID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	delete(t.removed, id)
	if p, ok := t.peers[id]; ok {
		t.root.Send(p.pid, peerURLChanged{url: peerURL})
		return
	}
	p := &peerRef{id: id}
	props := actor.PropsFromProducer(func() actor.Actor { return newPeerActor(t, p, peerURL) },
		actor.WithGuardian(t.stopOnPanic(id)), actor.WithSupervisor(t.stopOnPanic(id)))
	pid, err := t.root.SpawnNamed(props, "peer-"+strconv.FormatUint(id, 10))
	if err != nil {
		// Only a name clash fails, and names are unique per live peer.
		t.lg.Error("could not start a peer actor", zap.Uint64("peer", id), zap.Error(err))
		return
	}
	p.pid = pid
	t.peers[id] = p
	t.lg.Info("added peer", zap.Uint64("peer", id), zap.String("url", peerURL))
}

// RemovePeer implements Transport.
func (t *HTTP) RemovePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.peers[id]
	delete(t.peers, id)
	t.removed[id] = true
	t.mu.Unlock()
	if ok {
		// Stop without waiting: the caller is the raft actor, and a peer
		// may be in the middle of a POST.
		t.root.Stop(p.pid)
		t.lg.Info("removed peer", zap.Uint64("peer", id))
	}
}

// ActiveSince implements Transport.
func (t *HTTP) ActiveSince(id uint64) time.Time {
	p, _ := t.peer(id)
	if p == nil {
		return time.Time{}
	}
	return p.active.activeSince()
}

// Close implements Transport: it ends every connection and stops every peer
// actor, waiting for them.
func (t *HTTP) Close() error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	peers := t.peers
	t.peers = map[uint64]*peerRef{}
	t.mu.Unlock()

	t.cancel()
	close(t.closed)
	var errs []error
	for _, p := range peers {
		if err := t.root.StopFuture(p.pid).Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop peer %d: %w", p.id, err))
		}
	}
	t.pipeline.CloseIdleConnections()
	t.streams.CloseIdleConnections()
	t.snapshots.CloseIdleConnections()
	return errors.Join(errs...)
}

// peer returns the live peer id, and whether it was removed.
func (t *HTTP) peer(id uint64) (p *peerRef, removed bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.peers[id], t.removed[id]
}

// stopOnPanic stops a peer actor that panicked and stops the member: the
// peer would otherwise be gone without a trace, and a bug in the transport
// is not something to run on with.
func (t *HTTP) stopOnPanic(id uint64) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		err := fmt.Errorf("peer %d: panic: %s", id, redact.Text(fmt.Sprint(reason), 0))
		t.lg.Error("transport actor failed", zap.Error(err))
		if t.cfg.Fatal != nil {
			t.cfg.Fatal(messages.Fatal{Component: "transport", Err: err})
		}
		return actor.StopDirective
	})
}
