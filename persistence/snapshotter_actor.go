package persistence

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// SnapshotterConfig configures the snapshotter actor.
type SnapshotterConfig struct {
	SnapDir, WALDir string
	Storage         *raft.MemoryStorage
	WAL             *actor.PID // the wal actor, which records snapshots
	// CatchUpEntries is how many entries stay in memory behind a snapshot,
	// so a follower that is slightly behind catches up from the log instead
	// of needing a whole snapshot. CatchUpBytes bounds the same tail in
	// bytes (zero means DefaultCatchUpBytes): with large values, a count
	// alone would keep gigabytes of log in memory.
	CatchUpEntries uint64
	CatchUpBytes   uint64
	// MaxSnapFiles and MaxWALFiles are how many of the newest files purge
	// keeps; zero means 5.
	MaxSnapFiles, MaxWALFiles int
	// Fatal is called once, on the first failed write.
	Fatal   func(messages.Fatal)
	Logger  *zap.Logger
	Metrics *metrics.Node // nil makes an unregistered one
}

// inflightSnapshot remembers a snapshot between its .snap file and its WAL
// record, for the log line written once it is complete.
type inflightSnapshot struct {
	start time.Time
	size  int
}

type snapshotterActor struct {
	cfg      SnapshotterConfig
	lg       *zap.Logger
	failed   bool
	inflight map[uint64]inflightSnapshot // by index
}

// DefaultCatchUpBytes bounds the log kept behind a snapshot: 64 MiB holds
// the default 5,000 entries of writes up to 13 KB each, and keeps a member
// writing 1 MB values from holding 5 GB of log.
const DefaultCatchUpBytes = 64 << 20

// NewSnapshotterActor returns the actor that writes .snap files, compacts the
// in-memory log behind them and purges old files.
func NewSnapshotterActor(cfg SnapshotterConfig) actor.Actor {
	if cfg.MaxSnapFiles == 0 {
		cfg.MaxSnapFiles = defaultKeep
	}
	if cfg.MaxWALFiles == 0 {
		cfg.MaxWALFiles = defaultKeep
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(nil)
	}
	if cfg.CatchUpBytes == 0 {
		cfg.CatchUpBytes = DefaultCatchUpBytes
	}
	return &snapshotterActor{
		cfg:      cfg,
		lg:       orNop(cfg.Logger).With(zap.String("actor", "snapshotter")),
		inflight: make(map[uint64]inflightSnapshot),
	}
}

// Receive handles one message. A panic (MemoryStorage panics on indexes
// it does not hold: a bug) is the supervisor's to handle: the member
// restarts this actor from its config, within a budget (package actors,
// supervision.go). A failed write is not a panic: fail stops the member.
func (a *snapshotterActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case messages.CreateSnapshot:
		a.onCreate(ctx, msg)
	case messages.SnapshotRecorded:
		a.onRecorded(msg)
	case messages.SaveSnapshotFile:
		a.onSaveFile(ctx, msg)
	case messages.LoadSnapshot:
		a.onLoad(ctx, msg)
	}
}

// onCreate writes the .snap file for a snapshot of the state machine and asks
// the wal actor to record it. The file comes first: a WAL record naming a
// missing file would leave a restart without a snapshot to start from.
func (a *snapshotterActor) onCreate(ctx actor.Context, msg messages.CreateSnapshot) {
	if a.failed {
		return
	}
	start := time.Now()
	// MemoryStorage panics on an index it does not hold; the kv actor only
	// applies stable entries, so this is a bug, not a disk failure.
	if last, _ := a.cfg.Storage.LastIndex(); msg.Index > last {
		a.lg.Error("asked to snapshot an index past the log; skipped",
			zap.Uint64("index", msg.Index), zap.Uint64("last-index", last))
		return
	}
	// Memory keeps the metadata only (see SnapStorage); the file gets the data.
	s, err := a.cfg.Storage.CreateSnapshot(msg.Index, msg.ConfState, nil)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		// A newer snapshot came from the leader meanwhile.
		a.lg.Debug("snapshot out of date; skipped", zap.Uint64("index", msg.Index))
		return
	}
	if err != nil {
		a.fail(fmt.Errorf("create snapshot at index %d: %w", msg.Index, err))
		return
	}
	s.Data = msg.Data
	saveStart := time.Now()
	if err := writeSnapFile(a.cfg.SnapDir, s); err != nil {
		a.fail(fmt.Errorf("write .snap file for index %d: %w", msg.Index, err))
		return
	}
	a.cfg.Metrics.SnapshotSave.Observe(time.Since(saveStart).Seconds())
	md := s.GetMetadata()
	cs := md.GetConfState()
	if cs == nil {
		cs = &raftpb.ConfState{}
	}
	a.inflight[md.GetIndex()] = inflightSnapshot{start: start, size: len(msg.Data)}
	ctx.Request(a.cfg.WAL, messages.RecordSnapshot{
		Snapshot: &walpb.Snapshot{Index: new(md.GetIndex()), Term: new(md.GetTerm()), ConfState: cs},
	})
}

// onRecorded finishes a snapshot once its WAL record is durable: only then
// may the log behind it leave memory and old files leave the disk.
func (a *snapshotterActor) onRecorded(msg messages.SnapshotRecorded) {
	info, known := a.inflight[msg.Index]
	delete(a.inflight, msg.Index)
	if errors.Is(msg.Err, ErrFailed) {
		// The wal actor failed earlier and has reported it already.
		a.failed = true
		return
	}
	if msg.Err != nil {
		a.fail(fmt.Errorf("record snapshot at index %d in the WAL: %w", msg.Index, msg.Err))
		return
	}
	if a.failed {
		return
	}
	a.compact(msg.Index)
	a.purge()
	if known {
		// Routine: one every --snapshot-count entries.
		a.lg.Debug("snapshot saved",
			zap.Uint64("index", msg.Index),
			zap.Int("data-bytes", info.size),
			zap.Duration("took", time.Since(info.start)),
		)
	}
}

func (a *snapshotterActor) compact(index uint64) {
	to := a.compactionPoint(index)
	if to == 0 {
		return
	}
	// A snapshot from the leader may have replaced the log meanwhile;
	// MemoryStorage panics past its last index, and behind its first there is
	// nothing left to drop.
	if last, _ := a.cfg.Storage.LastIndex(); to > last {
		a.lg.Debug("log shorter than the compaction point; skipped",
			zap.Uint64("compact-index", to), zap.Uint64("last-index", last))
		return
	}
	err := a.cfg.Storage.Compact(to)
	switch {
	case errors.Is(err, raft.ErrCompacted):
	case err != nil:
		a.lg.Warn("failed to compact the in-memory log", zap.Uint64("compact-index", to), zap.Error(err))
	default:
		a.lg.Debug("compacted the in-memory log", zap.Uint64("compact-index", to))
	}
}

// compactionPoint is the index up to which the log may leave memory after a
// snapshot at index: all but the last CatchUpEntries entries, and fewer
// still if those hold more than CatchUpBytes. Zero means nothing.
func (a *snapshotterActor) compactionPoint(index uint64) uint64 {
	var to uint64
	if index > a.cfg.CatchUpEntries {
		to = index - a.cfg.CatchUpEntries
	}
	first, err := a.cfg.Storage.FirstIndex()
	if err != nil || index < first {
		return to
	}
	lo := max(to+1, first)
	ents, err := a.cfg.Storage.Entries(lo, index+1, math.MaxUint64)
	if err != nil {
		return to
	}
	var size uint64
	for i := len(ents) - 1; i >= 0; i-- {
		size += uint64(len(ents[i].GetData()))
		if size > a.cfg.CatchUpBytes {
			return ents[i].GetIndex() // this one and those before it go
		}
	}
	return to
}

// purge errors are not fatal: the files only take space.
func (a *snapshotterActor) purge() {
	if _, err := PurgeSnapFiles(a.lg, a.cfg.SnapDir, a.cfg.MaxSnapFiles); err != nil {
		a.lg.Warn("snapshot purge failed", zap.Error(err))
	}
	if _, err := PurgeWALFiles(a.lg, a.cfg.WALDir, a.cfg.MaxWALFiles); err != nil {
		a.lg.Warn("WAL purge failed", zap.Error(err))
	}
}

// onSaveFile writes a snapshot received from the leader for the wal actor.
func (a *snapshotterActor) onSaveFile(ctx actor.Context, msg messages.SaveSnapshotFile) {
	if a.failed {
		ctx.Respond(messages.SnapshotFileSaved{Err: ErrFailed})
		return
	}
	var err error
	if serr := writeSnapFile(a.cfg.SnapDir, msg.Snapshot); serr != nil {
		err = fmt.Errorf("write .snap file for index %d: %w", msg.Snapshot.GetMetadata().GetIndex(), serr)
		// The wal actor reports it as fatal; this actor only stops writing.
		a.failed = true
		a.lg.Error("failed to write a received snapshot", zap.Error(err))
	}
	ctx.Respond(messages.SnapshotFileSaved{Err: err})
}

func (a *snapshotterActor) fail(err error) {
	if a.failed {
		return
	}
	a.failed = true
	a.lg.Error("snapshot failed; no more snapshots will be taken", zap.Error(err))
	if a.cfg.Fatal != nil {
		a.cfg.Fatal(messages.Fatal{Component: "snapshotter", Err: err})
	}
}

// onLoad reads a snapshot back from its .snap file for raft to send to a
// follower, and answers the requester (the raft actor) with
// messages.SnapshotLoaded. The mailbox orders it after the write of that
// file.
func (a *snapshotterActor) onLoad(ctx actor.Context, msg messages.LoadSnapshot) {
	name := filepath.Join(a.cfg.SnapDir, fmt.Sprintf("%016x-%016x.snap", msg.Term, msg.Index))
	s, err := snap.Read(a.lg, name)
	if err != nil {
		ctx.Respond(messages.SnapshotLoaded{Index: msg.Index, Err: fmt.Errorf("read %s: %w", name, err)})
		return
	}
	a.lg.Info("read a snapshot back for a follower", zap.Uint64("index", msg.Index), zap.Int("data-bytes", len(s.GetData())))
	ctx.Respond(messages.SnapshotLoaded{Index: msg.Index, Snapshot: s})
}
