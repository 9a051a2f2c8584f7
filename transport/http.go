package transport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

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
	// Fatal is told when a peer actor panicked more often than its restart
	// budget allows (supervise.go), and when a SnapshotSource panics: the
	// member must stop rather than run on cut off from a peer. Nil only
	// logs, and leaves such a peer stopped: for tests.
	Fatal func(messages.Fatal)
	// Restarts is raftkv_actor_restarts_total (label actor): the transport
	// counts its peer actors' restarts as actor="peer". Nil counts none.
	Restarts *prometheus.CounterVec
	Logger   *zap.Logger
}

// HTTP is the network transport: etcd's rafthttp protocol, with one actor
// per peer. Send, AddPeer and RemovePeer may be called from any goroutine.
// Serve Handler on the member's peer URL.
type HTTP struct {
	cfg  HTTPConfig
	lg   *zap.Logger
	root *actor.RootContext
	// supervisor is the strategy of the peer actors' guardian; restarts
	// counts what it restarts (nil without HTTPConfig.Restarts).
	supervisor *peerSupervisor
	restarts   prometheus.Counter
	// ctx is cancelled by Close: every dial and POST in flight ends with it.
	ctx    context.Context
	cancel context.CancelFunc
	closed chan struct{}
	// queueSize and pipelineSize are peerQueueSize and pipelineQueueSize;
	// fields so that this package's tests can fill a queue with a few
	// messages.
	queueSize, pipelineSize int64
	// tap is set only by this package's tests, before any peer is added:
	// see props.
	tap func(actor string, msg any, next func())

	mu      sync.RWMutex
	peers   map[uint64]*peerRef
	removed map[uint64]bool
	stopped bool
}

// peerRef is a peer's bookkeeping, the one place it is kept: what Send
// needs without asking the peer's actor (where to post, how full its queue
// is), and what the actor keeps across its restarts. The actor keeps its
// PID when protoactor restarts it, so the map entry never goes stale.
type peerRef struct {
	id  uint64
	pid *actor.PID
	// queued counts messages accepted by Send that no child has finished
	// with (written or dropped), nor a restart written off (peerLife).
	// Send increments it, the children decrement it: the bound of
	// invariant 8 without a round trip.
	queued atomic.Int64
	stats  peerCounters
	active activity

	// url and life belong to the peer actor's goroutine: the peer's URL,
	// which outlives a restart, and the current life of the actor.
	url  string
	life *peerLife
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
	t := &HTTP{
		cfg:          cfg,
		lg:           cfg.Logger,
		root:         cfg.System.Root,
		ctx:          ctx,
		cancel:       cancel,
		closed:       make(chan struct{}),
		queueSize:    peerQueueSize,
		pipelineSize: pipelineQueueSize,
		peers:        make(map[uint64]*peerRef),
		removed:      make(map[uint64]bool),
	}
	t.supervisor = &peerSupervisor{t: t}
	if cfg.Restarts != nil {
		t.restarts = cfg.Restarts.WithLabelValues(restartsLabel)
	}
	return t, nil
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
	p := &peerRef{id: id, url: peerURL}
	// The producer makes each life of the actor, the first and every one
	// after a restart.
	props := t.props("peer", func() actor.Actor { return newPeerActor(t, p) },
		actor.WithGuardian(t.supervisor), actor.WithReceiverMiddleware(p.hold))
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
// actor, waiting for them (each closes its own connections as it stops).
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
	return errors.Join(errs...)
}

// peer returns the live peer id, and whether it was removed.
func (t *HTTP) peer(id uint64) (p *peerRef, removed bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.peers[id], t.removed[id]
}
