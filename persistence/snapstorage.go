package persistence

import (
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// SnapStorage is the raft actor's Storage: the member's MemoryStorage, which
// holds the log and the newest snapshot's metadata but not its data. The
// data, as large as the whole key-value state, lives in the .snap file; it is
// read back only when raft must send the snapshot to a follower that fell
// behind the compaction, and let go once no follower waits for one.
//
// Snapshot never reads the disk on the caller's goroutine (the raft actor's):
// the first call asks the loader for the file (messages.LoadSnapshot to the
// snapshotter) and answers raft.ErrSnapshotTemporarilyUnavailable, which
// makes raft try again at the follower's next heartbeat. The answer,
// messages.SnapshotLoaded, comes back to the raft actor's mailbox, which
// hands it to Loaded. Everything but the embedded MemoryStorage (which has
// its own lock, for the wal and snapshotter actors) is touched only on the
// raft actor's goroutine, so it needs no lock.
type SnapStorage struct {
	*raft.MemoryStorage
	lg *zap.Logger

	// confState, when set, is the configuration raft starts with instead of
	// the snapshot's: the state machine's, as of an applied index past the
	// snapshot (see SetStartConfState).
	confState *raftpb.ConfState

	load    func(index, term uint64)
	loaded  *raftpb.Snapshot // with data; nil if none is held
	pending uint64           // index being loaded, 0 if none
}

// NewSnapStorage wraps ms. Until SetLoader is called, snapshots have no
// data of their own.
func NewSnapStorage(ms *raft.MemoryStorage, lg *zap.Logger) *SnapStorage {
	return &SnapStorage{MemoryStorage: ms, lg: orNop(lg)}
}

// SetLoader sets how the data of a snapshot is asked for: normally a
// messages.LoadSnapshot request to the snapshotter actor with the raft actor
// as its sender, whose answer the raft actor gives to Loaded. load runs on
// the raft actor's goroutine, inside raft, and must not block. Call it
// before the raft actor starts.
func (s *SnapStorage) SetLoader(load func(index, term uint64)) { s.load = load }

// SetStartConfState makes InitialState answer cs: raft starts at the state
// machine's applied index (raft.Config.Applied) and replays no entry up to
// it, so its configuration must be the one as of that index, not the older
// snapshot's. Call it before raft is built.
func (s *SnapStorage) SetStartConfState(cs *raftpb.ConfState) { s.confState = cs }

// InitialState implements raft.Storage.
func (s *SnapStorage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	hs, cs, err := s.MemoryStorage.InitialState()
	if err == nil && s.confState != nil {
		cs = s.confState
	}
	return hs, cs, err
}

// Snapshot implements raft.Storage. Without a loader (SetLoader) the
// snapshots carry no data of their own, as in the native format, whose
// state machine db goes with them on a stream of its own: the metadata in
// memory is the whole snapshot.
func (s *SnapStorage) Snapshot() (*raftpb.Snapshot, error) {
	snap, err := s.MemoryStorage.Snapshot()
	if err != nil || len(snap.GetData()) > 0 || snap.GetMetadata().GetIndex() == 0 || s.load == nil {
		return snap, err
	}
	md := snap.GetMetadata()
	if l := s.loaded; l != nil && l.GetMetadata().GetIndex() == md.GetIndex() {
		return l, nil
	}
	s.loaded = nil // an older one: no follower wants it any more
	if s.pending != md.GetIndex() {
		s.pending = md.GetIndex()
		s.load(md.GetIndex(), md.GetTerm())
	}
	return nil, raft.ErrSnapshotTemporarilyUnavailable
}

// Loaded takes the snapshotter's answer to a load; the raft actor calls it
// with each messages.SnapshotLoaded it receives. An answer for a snapshot
// that is no longer the newest is dropped: it would only pin its data in
// memory until the next Snapshot call found it stale.
func (s *SnapStorage) Loaded(msg messages.SnapshotLoaded) {
	if s.pending == msg.Index {
		s.pending = 0
	}
	if msg.Err != nil {
		// Raft asks again at the follower's next heartbeat, and so
		// does this, so a failed read is retried.
		s.lg.Warn("could not read a snapshot back for a follower", zap.Uint64("index", msg.Index), zap.Error(msg.Err))
		return
	}
	if cur, err := s.MemoryStorage.Snapshot(); err != nil || cur.GetMetadata().GetIndex() != msg.Index ||
		msg.Snapshot.GetMetadata().GetIndex() != msg.Index {
		return
	}
	s.loaded = msg.Snapshot
}

// Release lets go of a snapshot's data read back for followers; the raft
// actor calls it once no follower waits for a snapshot.
func (s *SnapStorage) Release() { s.loaded = nil }

// withoutData is a snapshot's metadata alone, for the MemoryStorage.
func withoutData(s *raftpb.Snapshot) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: s.GetMetadata()}
}
