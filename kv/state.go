package kv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// ErrStateLost is returned by OpenState when the db cannot be brought level
// with the log: it is missing, unreadable or behind the log's first index,
// and the log no longer holds the entries between (they were compacted into
// a snapshot). Serving from it would be serving an empty or old state as
// the current one. The member must be removed from the cluster and added
// again under a new id, with an empty data dir.
var ErrStateLost = errors.New("the state machine's db is missing or behind the log, which was compacted past it")

// StateConfig says where a member's state lives and what its log holds.
type StateConfig struct {
	Path   string // the db file (DBFile in the data dir)
	Format apply.Format
	// Snapshot is the newest snapshot the WAL recorded, nil if none: the
	// log holds only the entries after its index.
	Snapshot *raftpb.Snapshot
	// SnapshotDB names the file where a db received with the snapshot at
	// an index is saved (ReceiveSnapshotDB), for a member that crashed
	// between recording such a snapshot and installing its db.
	SnapshotDB func(index uint64) string
	Logger     *zap.Logger
}

// State is a member's state machine data, opened and brought level with its
// log. The kv actor takes it over (Config.State); until then, and after the
// actor stopped, its owner may read it and must Close it.
type State struct {
	st  *store.Store
	cfg StateConfig
}

// OpenState opens the member's db, creating it for a new member, and
// reconciles it with the log:
//
//  1. a db of this layout at or past the snapshot's index is used as it is;
//     raft then replays only the entries after its applied index;
//  2. a data dir of the previous layout (no db, a snapshot with the state
//     inline) is migrated: the db is made from the snapshot;
//  3. a db behind the snapshot (or none) takes the db received with that
//     snapshot, if it was saved before a crash;
//  4. a db that is unreadable while the log still holds every entry (no
//     snapshot) is moved aside and rebuilt from the log;
//  5. anything else is ErrStateLost.
func OpenState(cfg StateConfig) (*State, error) {
	lg := cfg.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	codec, err := cfg.Format.Codec()
	if err != nil {
		return nil, err
	}
	snapIndex := cfg.Snapshot.GetMetadata().GetIndex()
	st, fresh, err := store.Open(cfg.Path)
	if errors.Is(err, store.ErrBadDB) && snapIndex == 0 {
		aside := fmt.Sprintf("%s.unreadable-%d", cfg.Path, time.Now().Unix())
		lg.Warn("the db is unreadable; the log holds every entry: rebuilding it from the log", zap.String("moved_to", aside), zap.Error(err))
		if rerr := os.Rename(cfg.Path, aside); rerr != nil {
			return nil, fmt.Errorf("move the unreadable db aside: %w", rerr)
		}
		st, fresh, err = store.Open(cfg.Path)
	}
	if errors.Is(err, store.ErrBadDB) {
		return nil, fmt.Errorf("%w: %w (the log starts after index %d)", ErrStateLost, err, snapIndex)
	}
	if err != nil {
		return nil, err
	}
	s := &State{st: st, cfg: cfg}
	if err := s.reconcile(codec, fresh, lg); err != nil {
		_ = st.Close()
		if fresh {
			_ = os.Remove(cfg.Path) // made here, and of no use
		}
		return nil, err
	}
	s.cleanSnapshotDBs(lg)
	return s, nil
}

func (s *State) reconcile(codec apply.Codec, fresh bool, lg *zap.Logger) error {
	snap := s.cfg.Snapshot
	md := snap.GetMetadata()
	snapIndex := md.GetIndex()
	st := s.st
	applied, _ := st.Applied()
	switch {
	case inlineSnapshot(s.cfg.Format, snap) && snapIndex > 0 && (fresh || applied < snapIndex):
		// The snapshot holds the whole state: a data dir of the previous
		// layout, or the raftexample format, whose snapshots always do.
		if err := st.Reset(snapIndex); err != nil {
			return err
		}
		cs := raftpb.EnsureConfState(proto.Clone(md.GetConfState()).(*raftpb.ConfState))
		if err := codec.Restore(st, snap.GetData(), snapIndex, cs, nil); err != nil {
			return fmt.Errorf("migrate the snapshot at index %d into the db: %w", snapIndex, err)
		}
		st.SetApplied(snapIndex, md.GetTerm(), cs)
		if err := st.Commit(); err != nil {
			return err
		}
		lg.Info("made the db from the state the snapshot holds", zap.Uint64("index", snapIndex), zap.Int("keys", st.Keys()))
	case applied < snapIndex:
		path := s.cfg.SnapshotDB(snapIndex)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w: the db holds index %d, the log starts after %d, and no db came with that snapshot (%s)",
				ErrStateLost, applied, snapIndex, path)
		}
		retired, err := st.Install(path)
		if err != nil {
			return err
		}
		if retired != nil {
			_ = retired.Close() // at start: nothing is served yet
		}
		applied, _ = st.Applied()
		lg.Info("installed the db received with the snapshot", zap.Uint64("snapshot_index", snapIndex), zap.Uint64("applied", applied))
	}
	return nil
}

// cleanSnapshotDBs removes received dbs the state has passed, and the
// temporary files of transfers a crash cut short.
func (s *State) cleanSnapshotDBs(lg *zap.Logger) {
	if s.cfg.SnapshotDB == nil {
		return
	}
	dir := filepath.Dir(s.cfg.SnapshotDB(0))
	applied, _ := s.st.Applied()
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.snap.db.*.tmp"))
	for _, p := range tmps {
		if err := os.Remove(p); err != nil {
			lg.Warn("could not remove a partial snapshot db", zap.String("path", p), zap.Error(err))
		}
	}
	dbs, _ := filepath.Glob(filepath.Join(dir, "*.snap.db"))
	for _, p := range dbs {
		var index uint64
		if _, err := fmt.Sscanf(filepath.Base(p), "%016x.snap.db", &index); err == nil && index <= applied {
			if err := os.Remove(p); err != nil {
				lg.Warn("could not remove a snapshot db", zap.String("path", p), zap.Error(err))
			}
		}
	}
}

// Applied is the index (and term) of the last entry the db holds.
func (s *State) Applied() (index, term uint64) { return s.st.Applied() }

// ConfState is the configuration as of Applied.
func (s *State) ConfState() *raftpb.ConfState { return s.st.ConfState() }

// Members returns the member list the state holds (id → peer URL).
func (s *State) Members() map[uint64]string { return s.st.Members() }

// Removed returns the ids the state knows were removed from the cluster.
func (s *State) Removed() []uint64 { return s.st.Removed() }

// SnapshotReader streams the db as of its last commit, for a follower that
// needs a snapshot; any goroutine may call it.
func (s *State) SnapshotReader() (io.ReadCloser, error) {
	rc, _, err := s.st.SnapshotReader()
	return rc, err
}

// Close commits what was applied and closes the db. The kv actor must have
// stopped.
func (s *State) Close() error { return s.st.Close() }

// Revision is the store's revision: the index of the last entry that
// changed a key. Read it before the kv actor takes the state over.
func (s *State) Revision() uint64 { return s.st.Revision() }

// ReadEvents reads the committed history (store.Store.ReadEvents); any
// goroutine may call it, while the kv actor applies.
func (s *State) ReadEvents(from uint64, maxEvents int, fn func(messages.Event)) (through uint64, err error) {
	return s.st.ReadEvents(from, maxEvents, fn)
}

// DBFile is the name of the state machine's db in a data dir.
const DBFile = "db"
