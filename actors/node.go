package actors

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/internal/redact"
	"github.com/raftkv/node/kv"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/membership"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
	"github.com/raftkv/node/persistence"
	"github.com/raftkv/node/transport"
	"github.com/raftkv/node/watch"
)

// NodeConfig configures one member.
type NodeConfig struct {
	ID uint64
	// ClusterID is the cluster this member belongs to; its data dir must
	// record the same (persistence.MismatchError otherwise). Zero takes the
	// id the data dir records, for a member that joined a running cluster
	// and learnt the id then; a new data dir needs one.
	ClusterID uint64
	// Token is --initial-cluster-token, recorded in a new data dir with
	// the peers, so that a refusal can say what the data dir holds.
	Token string
	// Peers maps the ids of the members named at start (--cluster) to their
	// peer URLs, this member's own included.
	Peers map[uint64]string
	// Join starts a member that was added to a running cluster: it does not
	// bootstrap a configuration of its own.
	Join bool
	// ForceNewCluster restarts the member as the only voter of its
	// cluster, keeping its data, for a cluster that lost its majority for
	// good (forceNewCluster).
	ForceNewCluster bool
	DataDir         string
	// Format is the state machine's format; every member of a cluster must
	// use the same one.
	Format apply.Format
	// ClientURLs are the URLs this member serves clients on
	// (--advertise-client-urls); the member publishes them to the cluster.
	ClientURLs []string

	SnapshotCount  uint64 // applied entries between snapshots
	CatchUpEntries uint64 // entries kept behind a snapshot for slow followers
	// Quota bounds the bytes of keys and values the state may hold
	// (--quota-backend-bytes); zero means none.
	Quota uint64

	TickInterval   time.Duration
	ElectionTick   int
	HeartbeatTick  int
	RequestTimeout time.Duration
	// ManualTick: raft's clock moves only on Node.Tick (RaftConfig.ManualTick).
	ManualTick bool

	// Transport builds the member's transport once the data dir is open
	// (and with it, the cluster id is known).
	Transport func(TransportEnv) (transport.Transport, error)
	Logger    *zap.Logger
	// Metrics records what the member's actors do; nil makes an
	// unregistered set.
	Metrics *metrics.Node

	// wrapLog lets this package's tests put a failing WAL under the wal actor.
	wrapLog func(persistence.Log) persistence.Log
}

// TransportEnv is what a transport is built with: its actors (if it has any)
// run in System, what it receives goes to Inbox, which feeds the raft actor,
// and it sends and checks ClusterID on the wire.
type TransportEnv struct {
	System    *actor.ActorSystem
	Inbox     transport.Inbox
	ClusterID uint64
	// SnapshotSource and SnapshotSink move the state machine's db with a
	// snapshot (the native format); nil for a format whose snapshots carry
	// the state inline.
	SnapshotSource transport.SnapshotSource
	SnapshotSink   transport.SnapshotSink
	// Fatal is the member's fatal handler: a transport whose actors fail
	// past their restart budget stops the member through it.
	Fatal func(messages.Fatal)
	// Restarts counts the restarts of the transport's actors
	// (raftkv_actor_restarts_total).
	Restarts *prometheus.CounterVec
}

// Defaults for NodeConfig's zero values. A 100 ms tick with a 10-tick
// election timeout is raftexample's and etcd's default: a leader is replaced
// within 1-2 s of failing, and a loaded 2-core machine does not miss
// heartbeats.
const (
	DefaultSnapshotCount  = 10000
	DefaultCatchUpEntries = 5000 // etcd's: a follower this far behind catches up by log
	DefaultTickInterval   = 100 * time.Millisecond
	DefaultElectionTick   = 10
	DefaultHeartbeatTick  = 1
	DefaultRequestTimeout = 5 * time.Second
	// stopTimeout bounds the wait for each actor to stop.
	stopTimeout = 10 * time.Second
)

// Node is one running member.
type Node struct {
	cfg   NodeConfig
	lg    *zap.Logger
	lock  io.Closer // of the data dir, released by Stop
	state *kv.State // the state machine's db, closed by Stop
	// history is the db's history with the chunks watchers read last
	// kept in memory, shared by the client APIs' watch streams.
	history *watch.SharedHistory
	system  *actor.ActorSystem
	tr      transport.Transport
	raft    *actor.PID
	wal     *actor.PID
	snap    *actor.PID
	kv      *actor.PID
	watch   *actor.PID
	// pinned are the goroutines the actors above run on (dispatcher.go),
	// ended by Stop once the actors stopped.
	pinned []*pinned

	failOnce sync.Once
	done     chan struct{} // closed when the member stopped by itself
	err      error         // why; set before done is closed

	stopOnce sync.Once
	stopped  chan struct{}
	stopErr  error
}

// StartNode replays cfg.DataDir and starts the member's actors.
func StartNode(cfg NodeConfig) (*Node, error) {
	cfg = withDefaults(cfg)
	if cfg.ID == 0 {
		return nil, errors.New("member id must be non-zero")
	}
	if cfg.Transport == nil {
		return nil, errors.New("no transport")
	}
	lg := cfg.Logger.With(zap.Uint64("member", cfg.ID))

	lock, err := persistence.LockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	rp, err := persistence.Open(lg, cfg.DataDir, persistence.Metadata{
		NodeID:         cfg.ID,
		ClusterID:      cfg.ClusterID,
		InitialCluster: membership.FormatCluster(cfg.Peers),
		Token:          cfg.Token,
		Joined:         cfg.Join,
	})
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open data dir %s: %w", cfg.DataDir, err)
	}
	cfg.ClusterID = rp.Metadata.ClusterID
	snapDir := persistence.SnapDir(cfg.DataDir)
	state, err := kv.OpenState(kv.StateConfig{
		Path:       filepath.Join(cfg.DataDir, kv.DBFile),
		Format:     cfg.Format,
		Snapshot:   rp.Snapshot,
		SnapshotDB: func(index uint64) string { return persistence.SnapDBPath(snapDir, index) },
		Logger:     lg.Named("state"),
	})
	if err == nil {
		err = checkStateAgainstLog(rp, state)
		if err == nil && cfg.ForceNewCluster {
			if rp.Fresh {
				err = fmt.Errorf("%w: the data dir has no log to keep", ErrCannotForce)
			} else {
				err = forceNewCluster(lg, cfg.ID, rp, state)
			}
		}
		if err != nil {
			_ = state.Close()
		}
	}
	if err != nil {
		if cerr := rp.WAL.Close(); cerr != nil {
			lg.Warn("close WAL after a failed start", zap.Error(cerr))
		}
		_ = lock.Close()
		return nil, fmt.Errorf("open the state in data dir %s: %w", cfg.DataDir, err)
	}
	n := &Node{cfg: cfg, lg: lg, lock: lock, state: state, done: make(chan struct{}), stopped: make(chan struct{})}
	if err := n.start(rp); err != nil {
		if cerr := rp.WAL.Close(); cerr != nil {
			lg.Warn("close WAL after a failed start", zap.Error(cerr))
		}
		_ = state.Close()
		_ = lock.Close()
		return nil, err
	}
	return n, nil
}

// checkStateAgainstLog refuses a db that no log of this data dir can have
// produced: one with entries while the WAL is new, or, with no snapshot to
// explain it, past the WAL's end (a WAL that lost entries it had fsynced).
func checkStateAgainstLog(rp *persistence.Replay, state *kv.State) error {
	applied, _ := state.Applied()
	last, _ := rp.Storage.LastIndex()
	switch {
	case rp.Fresh && applied > 0:
		return fmt.Errorf("%w: the db holds index %d, but there is no WAL", kv.ErrStateLost, applied)
	case rp.Snapshot == nil && applied > last:
		return fmt.Errorf("%w: the db holds index %d, but the WAL ends at %d", kv.ErrStateLost, applied, last)
	}
	return nil
}

func withDefaults(cfg NodeConfig) NodeConfig {
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount = DefaultSnapshotCount
	}
	if cfg.CatchUpEntries == 0 {
		cfg.CatchUpEntries = DefaultCatchUpEntries
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.ElectionTick == 0 {
		cfg.ElectionTick = DefaultElectionTick
	}
	if cfg.HeartbeatTick == 0 {
		cfg.HeartbeatTick = DefaultHeartbeatTick
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	return cfg
}

func (n *Node) start(rp *persistence.Replay) error {
	cfg, lg := n.cfg, n.lg
	n.system = newActorSystem(lg)
	root := n.system.Root
	n.raft = n.system.NewLocalPID("raft")
	n.wal = n.system.NewLocalPID("wal")
	n.snap = n.system.NewLocalPID("snapshotter")
	n.kv = n.system.NewLocalPID("kv")
	n.watch = n.system.NewLocalPID("watch")

	raftPID := n.raft
	// The transport may take a peer's message before the raft actor is
	// spawned (it listens first). protoactor registers a named process
	// before its mailbox is set up, and a send in between races with the
	// spawn (the race detector caught one), so the inbox drops what comes
	// before every actor is up: raft retransmits, as after any loss.
	var spawned atomic.Bool
	env := TransportEnv{
		System: n.system,
		Inbox: func(m any) {
			if spawned.Load() {
				root.Send(raftPID, m)
			}
		},
		ClusterID: cfg.ClusterID,
		Fatal:     n.fatal,
		Restarts:  cfg.Metrics.Restarts,
	}
	if cfg.Format == apply.FormatNative {
		// The native format's snapshots carry no data: the db goes with
		// them, streamed from a read transaction and saved by the
		// receiver before raft sees the snapshot.
		state, snapDir := n.state, persistence.SnapDir(cfg.DataDir)
		env.SnapshotSource = func(*raftpb.Message) (io.ReadCloser, error) { return state.SnapshotReader() }
		inProgress := cfg.Metrics.Health.SnapshotInProgress
		env.SnapshotSink = func(m *raftpb.Message, r io.Reader) error {
			inProgress.Inc()
			defer inProgress.Dec()
			index := m.GetSnapshot().GetMetadata().GetIndex()
			return store.ReceiveSnapshotDB(persistence.SnapDBPath(snapDir, index), index, r)
		}
	}
	tr, err := cfg.Transport(env)
	if err != nil {
		n.system.Shutdown()
		return fmt.Errorf("start transport: %w", err)
	}
	n.tr = tr
	// deliver releases responses after a storage write: this member's own go
	// to its raft actor, the others to the network.
	deliver := func(msgs []*raftpb.Message) {
		var out []*raftpb.Message
		for _, m := range msgs {
			if m.GetTo() == cfg.ID {
				root.Send(raftPID, m)
			} else {
				out = append(out, m)
			}
		}
		if len(out) > 0 {
			tr.Send(out)
		}
	}

	storage := persistence.NewSnapStorage(rp.Storage, lg.Named("storage"))
	applied, err := startIndex(rp, n.state, storage)
	if err != nil {
		n.abort()
		return err
	}
	snapDir := persistence.SnapDir(cfg.DataDir)
	kvActor, err := kv.NewActor(kv.Config{
		ID:             cfg.ID,
		Raft:           n.raft,
		Snapshotter:    n.snap,
		Deliver:        deliver,
		Format:         cfg.Format,
		ClientURLs:     cfg.ClientURLs,
		SnapshotCount:  cfg.SnapshotCount,
		RequestTimeout: cfg.RequestTimeout,
		State:          n.state,
		Log:            rp.Storage,
		SnapshotDB:     func(index uint64) string { return persistence.SnapDBPath(snapDir, index) },
		Quota:          cfg.Quota,
		// raft's election timeout, the lessor's minimum TTL and extension
		ElectionTimeout: time.Duration(cfg.ElectionTick) * cfg.TickInterval,
		Watch:           n.watch,
		Fatal:           n.fatal,
		Logger:          lg.Named("kv"),
		Metrics:         cfg.Metrics,
	})
	if err != nil {
		n.abort()
		return err
	}
	// The replicated member list over --cluster (membership.AtStart).
	removed := n.state.Removed()
	members := membership.AtStart(cfg.Peers, n.state.Members(), removed)
	var boot []raft.Peer
	if rp.Fresh && !cfg.Join {
		for _, id := range slices.Sorted(maps.Keys(cfg.Peers)) {
			boot = append(boot, raft.Peer{ID: id, Context: []byte(cfg.Peers[id])})
		}
	}
	if cfg.Format != apply.FormatNative {
		// Snapshots carry the state inline (raftexample's JSON), kept in
		// their .snap files: read back only for a follower that needs one.
		// The snapshotter answers the raft actor, which hands the data
		// to the storage.
		snapPID := n.snap
		storage.SetLoader(func(index, term uint64) {
			root.RequestWithCustomSender(snapPID, messages.LoadSnapshot{Index: index, Term: term}, raftPID)
		})
	}
	raftActor, err := NewRaft(RaftConfig{
		ID:            cfg.ID,
		Storage:       storage,
		Applied:       applied,
		Bootstrap:     boot,
		Members:       members,
		RemovedIDs:    removed,
		WAL:           n.wal,
		KV:            n.kv,
		Transport:     tr,
		ValidEntry:    kvActor.ValidEntry,
		TickInterval:  cfg.TickInterval,
		ElectionTick:  cfg.ElectionTick,
		HeartbeatTick: cfg.HeartbeatTick,
		ManualTick:    cfg.ManualTick,
		Logger:        lg,
		Metrics:       cfg.Metrics,
		Removed:       func(reason error) { n.fail(reason) },
		Fatal:         n.fatal,
	})
	if err != nil {
		n.abort()
		return err
	}
	var wlog persistence.Log = rp.WAL
	if cfg.wrapLog != nil {
		wlog = cfg.wrapLog(wlog)
	}
	walActor := persistence.NewWALActor(persistence.WALConfig{
		Log:         wlog,
		Storage:     rp.Storage,
		Snapshotter: n.snap,
		KV:          n.kv,
		Deliver:     deliver,
		Fatal:       n.fatal,
		Logger:      lg.Named("wal"),
		Metrics:     cfg.Metrics,
	})
	snapConfig := persistence.SnapshotterConfig{
		SnapDir:        persistence.SnapDir(cfg.DataDir),
		WALDir:         persistence.WALDir(cfg.DataDir),
		Storage:        rp.Storage,
		WAL:            n.wal,
		CatchUpEntries: cfg.CatchUpEntries,
		Fatal:          n.fatal,
		Logger:         lg.Named("snapshotter"),
		Metrics:        cfg.Metrics,
	}

	// The state's revision is read before the kv actor takes the state
	// over: the hub starts there, and the kv actor's events follow it.
	n.history = watch.NewSharedHistory(n.state)
	hub := watch.NewHub(watch.HubConfig{
		Revision: n.state.Revision(),
		History:  n.history,
		Logger:   lg.Named("watch"),
		Metrics:  cfg.Metrics,
	})
	// The hub goes before the kv actor, which sends to it; the raft actor
	// last: once it runs it ticks and sends to the others.
	// A producer is called again at each restart (supervision.go): the
	// snapshotter's makes a new one from its config, the watch hub's, the
	// kv actor's and the raft actor's a successor of the last; the wal
	// actor is never restarted.
	once := func(a actor.Actor) func() actor.Actor { return func() actor.Actor { return a } }
	sup := supervisor{lg: lg, restarts: cfg.Metrics.Restarts, fatal: n.fatal}
	for _, a := range []struct {
		name    string
		produce func() actor.Actor
	}{
		{"wal", once(walActor)},
		{"snapshotter", func() actor.Actor { return persistence.NewSnapshotterActor(snapConfig) }},
		{"watch", successive(hub, (*watch.Hub).Successor)},
		{"kv", successive(kvActor, (*kv.Actor).Successor)},
		{"raft", successive(raftActor, (*Raft).Successor)},
	} {
		d := newPinned()
		n.pinned = append(n.pinned, d)
		opts := append([]actor.PropsOption{actor.WithGuardian(sup.strategy(a.name)), actor.WithDispatcher(d)}, cfg.Metrics.PropsOptions(a.name)...)
		props := actor.PropsFromProducer(a.produce, opts...)
		if _, err := root.SpawnNamed(props, a.name); err != nil {
			n.abort()
			return fmt.Errorf("spawn %s actor: %w", a.name, err)
		}
	}
	spawned.Store(true)
	lg.Info("member started",
		zap.String("data_dir", cfg.DataDir),
		zap.Bool("fresh", rp.Fresh),
		zap.Uint64("applied_index", applied),
		zap.Int("members", len(members)))
	return nil
}

// successive makes an actor that supervision rebuilds (supervision.go):
// first the one made at start, then, at each restart after a panic, the
// successor of the last, made from what the old one handed over when it
// heard Restarting. It runs on the actor's goroutine.
func successive[A actor.Actor](first A, successor func(A) A) func() actor.Actor {
	cur, started := first, false
	return func() actor.Actor {
		if started {
			cur = successor(cur)
		}
		started = true
		return cur
	}
}

// startIndex is where raft starts applying: the state machine's applied
// index, so that raft replays only the entries the db lacks, as long as the
// log holds that index. raft's configuration is then the db's (as of that
// index), and the commit index at least it. A db ahead of the log (one
// received with a snapshot, before a crash kept the entries after the
// snapshot from the WAL) starts raft at the snapshot instead: the entries
// between reach the kv actor again, which passes them to raft unwritten.
func startIndex(rp *persistence.Replay, state *kv.State, storage *persistence.SnapStorage) (uint64, error) {
	applied, _ := state.Applied()
	snapIndex := rp.Snapshot.GetMetadata().GetIndex()
	last, err := rp.Storage.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("last index of the log: %w", err)
	}
	if applied <= snapIndex || applied > last {
		return snapIndex, nil
	}
	storage.SetStartConfState(state.ConfState())
	if hs := rp.HardState; hs.GetCommit() < applied {
		// Only entries the WAL had made durable were applied, and raft
		// hands only committed ones over: the commit index the WAL last
		// recorded may merely lag.
		if err := rp.Storage.SetHardState(&raftpb.HardState{Term: new(hs.GetTerm()), Vote: new(hs.GetVote()), Commit: new(applied)}); err != nil {
			return 0, fmt.Errorf("raise the commit index to the applied %d: %w", applied, err)
		}
	}
	return applied, nil
}

func (n *Node) fatal(f messages.Fatal) {
	n.lg.Error("fatal error: stopping the member", zap.String("component", f.Component), redact.Error(f.Err))
	n.fail(f)
}

// fail records why the member must stop and stops it. It runs on an actor's
// goroutine, which must not wait for actors to stop, so the stop runs on its
// own goroutine; Stop waits for it.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.err = err
		close(n.done)
		go func() { _ = n.Stop() }()
	})
}

// abort undoes a partial start.
func (n *Node) abort() {
	if n.tr != nil {
		_ = n.tr.Close()
	}
	n.system.Shutdown()
	n.closePinned()
}

// closePinned ends the actors' goroutines; the actors must have stopped.
func (n *Node) closePinned() {
	for _, d := range n.pinned {
		d.close()
	}
	n.pinned = nil
}

// DrainForwarded waits until no peer has forwarded this member a proposal or
// a read for two heartbeat intervals, or for at most an election timeout: a
// leader that handed leadership over does, before it stops, so that what
// followers still send it reaches the new leader. A member that gets no
// forwarded requests returns after the quiet time.
func (n *Node) DrainForwarded() error {
	quiet := 2 * time.Duration(n.cfg.HeartbeatTick) * n.cfg.TickInterval
	_, err := n.system.Root.RequestFuture(n.raft, messages.DrainForwarded{Quiet: quiet}, n.ElectionTimeout()).Result()
	if err != nil {
		return &askError{what: "drain forwarded requests", actor: "raft", wait: n.ElectionTimeout(), err: err}
	}
	return nil
}

// Tick moves raft's clock one tick, for a member started with ManualTick.
func (n *Node) Tick() { n.system.Root.Send(n.raft, messages.Tick{}) }

// Root is the root context of the member's actor system, for requests from
// outside the actors (the HTTP API).
func (n *Node) Root() *actor.RootContext { return n.system.Root }

// KV is the kv actor.
func (n *Node) KV() *actor.PID { return n.kv }

// Raft is the raft actor.
func (n *Node) Raft() *actor.PID { return n.raft }

// Watch is the watch hub (package watch).
func (n *Node) Watch() *actor.PID { return n.watch }

// History is the db's history, which a watch from a past revision reads,
// shared by every watch stream of the member (watch.SharedHistory).
func (n *Node) History() watch.History { return n.history }

// State is the state machine's db, for what any goroutine may read of it
// while the kv actor applies (a backup's stream).
func (n *Node) State() *kv.State { return n.state }

// StopWatches ends every open watch (reason "stopping") and refuses new
// ones. A watch stream lasts as long as its client: call it before a
// graceful shutdown of the client API, which would otherwise wait on the
// open streams.
func (n *Node) StopWatches() error {
	_, err := n.system.Root.RequestFuture(n.watch, watch.StopWatches{}, n.cfg.RequestTimeout).Result()
	if err != nil && !errors.Is(err, actor.ErrDeadLetter) { // a hub that stopped ended them all
		return &askError{what: "stop watches", actor: "watch hub", wait: n.cfg.RequestTimeout, err: err}
	}
	return nil
}

// ID is the member's raft id.
func (n *Node) ID() uint64 { return n.cfg.ID }

// ClusterID is the id of the member's cluster, as its data dir records it.
func (n *Node) ClusterID() uint64 { return n.cfg.ClusterID }

// ElectionTimeout is the wall time of one election timeout.
func (n *Node) ElectionTimeout() time.Duration {
	return time.Duration(n.cfg.ElectionTick) * n.cfg.TickInterval
}

// TransferLeadership moves leadership away from this member, if it leads,
// to the voter whose log is the most complete, and waits until another
// member leads or an election timeout has passed. It returns the new
// leader. A member that does not lead returns messages.ErrNotLeader.
func (n *Node) TransferLeadership() (uint64, error) {
	// The raft actor answers within an election timeout and two ticks.
	wait := n.ElectionTimeout() + time.Second
	res, err := n.system.Root.RequestFuture(n.raft, messages.TransferLeadership{}, wait).Result()
	if err != nil {
		return 0, &askError{what: "transfer leadership", actor: "raft", wait: wait, err: err}
	}
	lt, ok := res.(messages.LeadershipTransferred)
	if !ok {
		return 0, fmt.Errorf("transfer leadership: the raft actor answered with a %s, not the new leader", typeName(res))
	}
	return lt.Leader, lt.Err
}

// Done is closed when the member stopped by itself: a fatal error, or its
// removal from the cluster. Err then says why.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err is the reason the member stopped by itself: a messages.Fatal (an
// errors.As target), an error wrapping messages.ErrRemoved, or nil while it
// runs or after a plain Stop.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// Stop stops the member's actors, closes its WAL and transport, and waits for
// all of it. Calling Stop more than once, or concurrently, is safe.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		defer close(n.stopped)
		var errs []error
		// An actor that waits on another must stop before it: the kv
		// actor waits on the raft actor to apply a conf change, and the
		// wal actor on the snapshotter to save a leader's snapshot. So kv
		// first (waiting clients hear ErrStopped), raft next (no new work
		// after it), then the wal actor, closing the WAL, and the
		// snapshotter last. Stopped in another order, a kv actor in the
		// middle of a conf change waits out its timeout for an answer a
		// stopping raft actor never gives. The watch hub goes after the kv
		// actor, whose events it takes to the last.
		for _, pid := range []*actor.PID{n.kv, n.watch, n.raft, n.wal, n.snap} {
			if err := n.system.Root.StopFuture(pid).Wait(); err != nil {
				errs = append(errs, &askError{what: "stop", actor: pid.Id, wait: 10 * time.Second, err: err}) // StopFuture's wait
			}
		}
		if err := n.tr.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close transport: %w", err))
		}
		n.system.Shutdown()
		n.closePinned()
		if err := n.state.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the state machine's db: %w", err))
		}
		if err := n.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release the data dir: %w", err))
		}
		n.stopErr = errors.Join(errs...)
		n.lg.Info("member stopped")
	})
	<-n.stopped
	return n.stopErr
}
