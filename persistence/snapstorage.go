package persistence

import (
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// SnapStorage is the raft actor's Storage: the member's MemoryStorage, which
// holds the log and the newest snapshot's metadata but not its data. The
// data, as large as the whole key-value state, lives in the .snap file; it is
// read back only when raft must send the snapshot to a follower that fell
// behind the compaction, and let go once no follower waits for one.
//
// Snapshot never reads the disk on the caller's goroutine (the raft actor's):
// the first call asks Load to read the file and answers
// raft.ErrSnapshotTemporarilyUnavailable, which makes raft try again at the
// follower's next heartbeat.
type SnapStorage struct {
	*raft.MemoryStorage
	lg *zap.Logger

	// confState, when set, is the configuration raft starts with instead of
	// the snapshot's: the state machine's, as of an applied index past the
	// snapshot (see SetStartConfState).
	confState *raftpb.ConfState

	mu      sync.Mutex
	load    func(index, term uint64, done func(*raftpb.Snapshot, error))
	loaded  *raftpb.Snapshot // with data; nil if none is held
	pending uint64           // index being loaded, 0 if none
}

// NewSnapStorage wraps ms. Until SetLoader is called, snapshots have no
// data of their own.
func NewSnapStorage(ms *raft.MemoryStorage, lg *zap.Logger) *SnapStorage {
	return &SnapStorage{MemoryStorage: ms, lg: orNop(lg)}
}

// SetLoader sets how the data of a snapshot is read: normally a
// messages.LoadSnapshot to the snapshotter actor.
func (s *SnapStorage) SetLoader(load func(index, term uint64, done func(*raftpb.Snapshot, error))) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load = load
}

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
	if err != nil || len(snap.GetData()) > 0 || snap.GetMetadata().GetIndex() == 0 {
		return snap, err
	}
	s.mu.Lock()
	inline := s.load != nil
	s.mu.Unlock()
	if !inline {
		return snap, nil
	}
	md := snap.GetMetadata()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.loaded; l != nil && l.GetMetadata().GetIndex() == md.GetIndex() {
		return l, nil
	}
	s.loaded = nil // an older one: no follower wants it any more
	if s.pending != md.GetIndex() && s.load != nil {
		s.pending = md.GetIndex()
		index := md.GetIndex()
		s.load(index, md.GetTerm(), func(l *raftpb.Snapshot, err error) { s.done(index, l, err) })
	}
	return nil, raft.ErrSnapshotTemporarilyUnavailable
}

func (s *SnapStorage) done(index uint64, l *raftpb.Snapshot, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == index {
		s.pending = 0
	}
	if err != nil {
		// Raft asks again at the follower's next heartbeat, and so
		// does this, so a failed read is retried.
		s.lg.Warn("could not read a snapshot back for a follower", zap.Uint64("index", index), zap.Error(err))
		return
	}
	s.loaded = l
}

// Release lets go of a snapshot's data read back for followers; the raft
// actor calls it once no follower waits for a snapshot.
func (s *SnapStorage) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loaded = nil
}

// withoutData is a snapshot's metadata alone, for the MemoryStorage.
func withoutData(s *raftpb.Snapshot) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: s.GetMetadata()}
}
