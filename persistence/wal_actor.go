package persistence

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// Log is the part of *wal.WAL the wal actor uses. It is an interface so tests
// can observe the order of writes, fsyncs and responses.
type Log interface {
	// Save appends entries and the hard state; *wal.WAL fsyncs when
	// raft.MustSync says the change must be durable.
	Save(st *raftpb.HardState, ents []*raftpb.Entry) error
	// SaveSnapshot records a snapshot and fsyncs.
	SaveSnapshot(s *walpb.Snapshot) error
	// ReleaseLockTo lets purge remove WAL files wholly behind index.
	ReleaseLockTo(index uint64) error
	Close() error
}

var _ Log = (*wal.WAL)(nil)

// defaultSnapshotFileTimeout bounds the wait for the snapshotter to write a
// snapshot received from the leader. Snapshots can be large, so it is generous;
// hitting it is treated as a failed write.
const defaultSnapshotFileTimeout = 2 * time.Minute

// WALConfig configures the wal actor.
type WALConfig struct {
	Log         Log
	Storage     *raft.MemoryStorage
	Snapshotter *actor.PID // the snapshotter actor, which writes .snap files
	KV          *actor.PID // the kv actor, which restores received snapshots
	// Deliver routes the responses of a MsgStorageAppend once it is durable:
	// to this node's raft actor or to the network. It runs on the actor.
	Deliver func(msgs []*raftpb.Message)
	// Fatal is called once, on the first failed write or fsync.
	Fatal   func(messages.Fatal)
	Logger  *zap.Logger
	Metrics *metrics.Node // nil makes an unregistered one
	// SnapshotFileTimeout bounds the wait for SnapshotFileSaved; zero means
	// two minutes.
	SnapshotFileTimeout time.Duration
}

// errNoSnapshotPeers means the actor was built without the actors a received
// snapshot must go through; it is a wiring bug, reported like a failed write.
var errNoSnapshotPeers = errors.New("wal actor has no snapshotter or kv actor")

// errPanicked wraps a panic recovered while handling a message.
var errPanicked = errors.New("panic in the wal actor")

// noAnswerError is a request to another actor that got no answer, said in
// plain words rather than protoactor's ("future: timeout"), which it wraps.
type noAnswerError struct {
	text string
	err  error
}

func (e *noAnswerError) Error() string { return e.text }
func (e *noAnswerError) Unwrap() error { return e.err }

// flushMarker is what the wal actor sends itself when the first append of a
// group arrives. The mailbox is FIFO, so by the time the marker comes back
// every append queued before it has been buffered.
type flushMarker struct{}

type walActor struct {
	cfg WALConfig
	lg  *zap.Logger

	pending        []*raftpb.Message
	flushScheduled bool
	failed         bool // a write failed: nothing is written or delivered again
	closed         bool
}

// NewWALActor returns the actor that makes raft's appends durable. It owns
// cfg.Log from now on and closes it when the actor stops.
func NewWALActor(cfg WALConfig) actor.Actor {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	if cfg.SnapshotFileTimeout <= 0 {
		cfg.SnapshotFileTimeout = defaultSnapshotFileTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	return &walActor{cfg: cfg, lg: lg.With(zap.String("actor", "wal"))}
}

func (a *walActor) Receive(ctx actor.Context) {
	// MemoryStorage panics when raft's appends do not fit the log. Left to
	// protoactor, the panic would restart the actor with its buffer lost;
	// a stop with a clear error is the safe outcome (DESIGN invariant 9).
	defer func() {
		if r := recover(); r != nil {
			a.fail(fmt.Errorf("%w: %v", errPanicked, r))
		}
	}()
	switch msg := ctx.Message().(type) {
	case *raftpb.Message:
		a.onMessage(ctx, msg)
	case flushMarker:
		a.flushScheduled = false
		a.flush()
	case messages.RecordSnapshot:
		a.onRecordSnapshot(ctx, msg)
	case messages.FlushWAL:
		a.flush()
		var err error
		if a.failed || a.closed {
			err = ErrFailed
		}
		ctx.Respond(messages.WALFlushed{Err: err})
	case *actor.Stopping, *actor.Stopped:
		a.close()
	}
}

func (a *walActor) onMessage(ctx actor.Context, m *raftpb.Message) {
	if a.failed || a.closed {
		return
	}
	if m.GetType() != raftpb.MsgStorageAppend {
		a.lg.Warn("ignoring a message that is not MsgStorageAppend", zap.Stringer("type", m.GetType()))
		return
	}
	if !raft.IsEmptySnap(m.GetSnapshot()) {
		// Everything raft asked for before the snapshot must reach the disk
		// before the snapshot replaces it.
		a.flush()
		if !a.failed {
			a.appendSnapshot(ctx, m)
		}
		return
	}
	a.pending = append(a.pending, m)
	if !a.flushScheduled {
		a.flushScheduled = true
		ctx.Send(ctx.Self(), flushMarker{})
	}
}

// hardState rebuilds the hard state a MsgStorageAppend carries, or nil if it
// carries none (raft sets Term, Vote and Commit together or not at all).
func hardState(m *raftpb.Message) *raftpb.HardState {
	if m.Term == nil && m.Vote == nil && m.Commit == nil {
		return nil
	}
	hs := &raftpb.HardState{Term: new(m.GetTerm()), Vote: new(m.GetVote()), Commit: new(m.GetCommit())}
	if raft.IsEmptyHardState(hs) {
		return nil
	}
	return hs
}

// flush writes every buffered append with one Save, then fills the
// MemoryStorage, then delivers the responses: raft may only hear that entries
// are stable once they are on disk and readable from Storage.
func (a *walActor) flush() {
	if len(a.pending) == 0 || a.failed || a.closed {
		return
	}
	group := a.pending
	a.pending = nil

	var hs *raftpb.HardState
	var ents []*raftpb.Entry
	for _, m := range group {
		if s := hardState(m); s != nil {
			hs = s
		}
		// Later appends may overwrite indexes of earlier ones; the WAL keeps
		// the last record for an index, so order is all that matters.
		ents = append(ents, m.GetEntries()...)
	}
	// A failpoint (scripts/build-failpoints.sh); `return` fails the write.
	// gofail: var walBeforeSync struct{}
	// a.fail(errors.New("failpoint walBeforeSync"))
	// return

	start := time.Now()
	if err := a.cfg.Log.Save(orEmpty(hs), ents); err != nil {
		a.fail(fmt.Errorf("save %d entries: %w", len(ents), err))
		return
	}
	a.cfg.Metrics.FsyncDuration.Observe(time.Since(start).Seconds())
	a.cfg.Metrics.GroupSize.Observe(float64(len(group)))

	var resps []*raftpb.Message
	for _, m := range group {
		if err := a.toStorage(hardState(m), m.GetEntries()); err != nil {
			a.fail(err)
			return
		}
		resps = append(resps, m.GetResponses()...)
	}
	a.deliver(resps)
}

func orEmpty(hs *raftpb.HardState) *raftpb.HardState {
	if hs == nil {
		return &raftpb.HardState{}
	}
	return hs
}

func (a *walActor) toStorage(hs *raftpb.HardState, ents []*raftpb.Entry) error {
	if hs != nil {
		if err := a.cfg.Storage.SetHardState(hs); err != nil {
			return fmt.Errorf("set hard state in memory: %w", err)
		}
	}
	if err := a.cfg.Storage.Append(ents); err != nil {
		return fmt.Errorf("append %d entries in memory: %w", len(ents), err)
	}
	return nil
}

// appendSnapshot handles an append carrying a snapshot from the leader. The
// .snap file is written before the WAL record, so a WAL never names a
// snapshot that is not on disk; the kv actor gets the snapshot before raft
// hears it is stable, so its restore precedes every later apply.
func (a *walActor) appendSnapshot(ctx actor.Context, m *raftpb.Message) {
	s := m.GetSnapshot()
	md := s.GetMetadata()
	index := md.GetIndex()
	start := time.Now()
	if a.cfg.Snapshotter == nil || a.cfg.KV == nil {
		a.fail(fmt.Errorf("snapshot at index %d: %w", index, errNoSnapshotPeers))
		return
	}

	res, err := ctx.RequestFuture(a.cfg.Snapshotter, messages.SaveSnapshotFile{Snapshot: s}, a.cfg.SnapshotFileTimeout).Result()
	switch {
	case errors.Is(err, actor.ErrTimeout):
		err = &noAnswerError{fmt.Sprintf("the snapshotter did not save it within %v", a.cfg.SnapshotFileTimeout), err}
	case errors.Is(err, actor.ErrDeadLetter):
		err = &noAnswerError{"the snapshotter has stopped", err}
	}
	if err == nil {
		saved, ok := res.(messages.SnapshotFileSaved)
		switch {
		case !ok:
			err = fmt.Errorf("the snapshotter answered with a %s, not the saved file", strings.TrimPrefix(fmt.Sprintf("%T", res), "*"))
		case saved.Err != nil:
			err = saved.Err
		}
	}
	if err != nil {
		a.fail(fmt.Errorf("write .snap file for snapshot at index %d: %w", index, err))
		return
	}

	cs := md.GetConfState()
	if cs == nil {
		cs = &raftpb.ConfState{}
	}
	if err := a.cfg.Log.SaveSnapshot(&walpb.Snapshot{Index: new(index), Term: new(md.GetTerm()), ConfState: cs}); err != nil {
		a.fail(fmt.Errorf("record snapshot at index %d: %w", index, err))
		return
	}
	hs := hardState(m)
	if hs != nil || len(m.GetEntries()) > 0 {
		if err := a.cfg.Log.Save(orEmpty(hs), m.GetEntries()); err != nil {
			a.fail(fmt.Errorf("save state after snapshot at index %d: %w", index, err))
			return
		}
	}
	if err := a.cfg.Storage.ApplySnapshot(withoutData(s)); err != nil {
		a.fail(fmt.Errorf("apply snapshot at index %d in memory: %w", index, err))
		return
	}
	if err := a.toStorage(hs, m.GetEntries()); err != nil {
		a.fail(err)
		return
	}
	if err := a.cfg.Log.ReleaseLockTo(index); err != nil {
		a.fail(fmt.Errorf("release WAL files behind index %d: %w", index, err))
		return
	}
	ctx.Send(a.cfg.KV, messages.RestoreSnapshot{Snapshot: s})
	a.lg.Info("saved snapshot received from the leader",
		zap.Uint64("index", index),
		zap.Uint64("term", md.GetTerm()),
		zap.Int("data-bytes", len(s.GetData())),
		zap.Duration("took", time.Since(start)),
	)
	a.deliver(m.GetResponses())
}

// onRecordSnapshot records a snapshot the snapshotter has already written.
func (a *walActor) onRecordSnapshot(ctx actor.Context, msg messages.RecordSnapshot) {
	index := msg.Snapshot.GetIndex()
	if a.failed || a.closed {
		ctx.Respond(messages.SnapshotRecorded{Index: index, Err: ErrFailed})
		return
	}
	// Appends buffered before the request go first: the record must not
	// precede entries raft handed over earlier.
	a.flush()
	if a.failed {
		ctx.Respond(messages.SnapshotRecorded{Index: index, Err: ErrFailed})
		return
	}
	err := a.cfg.Log.SaveSnapshot(msg.Snapshot)
	if err != nil {
		err = fmt.Errorf("record snapshot at index %d: %w", index, err)
	} else if rerr := a.cfg.Log.ReleaseLockTo(index); rerr != nil {
		err = fmt.Errorf("release WAL files behind index %d: %w", index, rerr)
	}
	if err != nil {
		a.fail(err)
	}
	ctx.Respond(messages.SnapshotRecorded{Index: index, Err: err})
}

func (a *walActor) deliver(resps []*raftpb.Message) {
	if len(resps) == 0 || a.cfg.Deliver == nil {
		return
	}
	a.cfg.Deliver(resps)
}

// fail stops all writing. After a failed write or fsync the file's state is
// unknown (fsync errors may drop dirty pages), so retrying could make raft
// believe lost data is durable.
func (a *walActor) fail(err error) {
	if a.failed {
		return
	}
	a.failed = true
	a.pending = nil
	a.lg.Error("WAL write failed; dropping all further work", zap.Error(err))
	if a.cfg.Fatal != nil {
		a.cfg.Fatal(messages.Fatal{Component: "wal", Err: err})
	}
}

func (a *walActor) close() {
	if a.closed {
		return
	}
	a.closed = true
	if len(a.pending) > 0 {
		// Their responses were never delivered, so raft does not count on them.
		a.lg.Debug("stopping with appends not yet written", zap.Int("appends", len(a.pending)))
		a.pending = nil
	}
	if a.cfg.Log == nil {
		return
	}
	if err := a.cfg.Log.Close(); err != nil {
		a.lg.Warn("failed to close the WAL", zap.Error(err))
	}
}
