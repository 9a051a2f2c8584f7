package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// dirMode keeps the data directory private: it holds every key and value.
const dirMode = 0o700

// WALDir is where the write-ahead log of dataDir lives.
func WALDir(dataDir string) string { return filepath.Join(dataDir, "wal") }

// SnapDir is where the snapshot files of dataDir live.
func SnapDir(dataDir string) string { return filepath.Join(dataDir, "snap") }

// SnapDBPath is where the state machine's db that came with the snapshot at
// index is saved until it is installed: etcd's name for it.
func SnapDBPath(snapDir string, index uint64) string {
	return filepath.Join(snapDir, fmt.Sprintf("%016x.snap.db", index))
}

// Metadata identifies the member a WAL belongs to. It is written at the head
// of every WAL file when the WAL is created and checked at every Open, so a
// data directory is never replayed as another member's, or as a member of
// another cluster.
type Metadata struct {
	NodeID    uint64
	ClusterID uint64
	// How the member came to be, recorded so that a refusal can say what
	// the data dir holds: the peer URLs of the cluster it was created in
	// (--cluster), its --initial-cluster-token, and whether it joined a
	// running cluster (learning the cluster id from its peers) instead.
	// Data dirs of earlier versions have none of these.
	InitialCluster string
	Token          string
	Joined         bool
}

// The encoding: NodeID then ClusterID, 8 bytes each, big-endian (all that
// earlier versions wrote), then an extension: a version byte, a flags byte,
// and the two strings, each a uvarint length and its bytes.
const (
	metadataSize       = 16
	metadataExtVersion = 1
	flagJoined         = 1
)

func (m Metadata) marshal() []byte {
	b := make([]byte, metadataSize, metadataSize+2+2*binary.MaxVarintLen64+len(m.InitialCluster)+len(m.Token))
	binary.BigEndian.PutUint64(b[:8], m.NodeID)
	binary.BigEndian.PutUint64(b[8:], m.ClusterID)
	var flags byte
	if m.Joined {
		flags |= flagJoined
	}
	b = append(b, metadataExtVersion, flags)
	b = binary.AppendUvarint(b, uint64(len(m.InitialCluster)))
	b = append(b, m.InitialCluster...)
	b = binary.AppendUvarint(b, uint64(len(m.Token)))
	return append(b, m.Token...)
}

func unmarshalMetadata(b []byte) (Metadata, error) {
	if len(b) < metadataSize {
		return Metadata{}, fmt.Errorf("%w: %d bytes, want %d or more", ErrBadMetadata, len(b), metadataSize)
	}
	m := Metadata{
		NodeID:    binary.BigEndian.Uint64(b[:8]),
		ClusterID: binary.BigEndian.Uint64(b[8:16]),
	}
	ext := b[metadataSize:]
	if len(ext) == 0 {
		return m, nil // written by an earlier version
	}
	if len(ext) < 2 || ext[0] != metadataExtVersion {
		return Metadata{}, fmt.Errorf("%w: unknown extension", ErrBadMetadata)
	}
	m.Joined = ext[1]&flagJoined != 0
	ext = ext[2:]
	for _, s := range []*string{&m.InitialCluster, &m.Token} {
		n, k := binary.Uvarint(ext)
		if k <= 0 || n > uint64(len(ext)-k) {
			return Metadata{}, fmt.Errorf("%w: truncated extension", ErrBadMetadata)
		}
		*s = string(ext[k : k+int(n)])
		ext = ext[k+int(n):]
	}
	if len(ext) != 0 {
		return Metadata{}, fmt.Errorf("%w: %d trailing bytes", ErrBadMetadata, len(ext))
	}
	return m, nil
}

// MismatchError is the error of an Open that found the data of another
// member, or of another cluster: it carries what the data dir holds, so that
// the refusal can say so and what to do. It wraps ErrNodeIDMismatch or
// ErrClusterIDMismatch.
type MismatchError struct {
	Stored, Want Metadata
	Err          error
}

func (e *MismatchError) Error() string {
	if errors.Is(e.Err, ErrNodeIDMismatch) {
		return fmt.Sprintf("%v: WAL has member %d, this member is %d", e.Err, e.Stored.NodeID, e.Want.NodeID)
	}
	return fmt.Sprintf("%v: WAL has cluster %x, this member is in %x", e.Err, e.Stored.ClusterID, e.Want.ClusterID)
}

func (e *MismatchError) Unwrap() error { return e.Err }

// checkOwner reports whether a WAL written with stored may be replayed by the
// member described by want. A zero want.ClusterID accepts the stored one: a
// member that joined a running cluster learnt its id once, when it joined,
// and its data dir is the record of it since.
func checkOwner(stored, want Metadata) error {
	if stored.NodeID != want.NodeID {
		return &MismatchError{Stored: stored, Want: want, Err: ErrNodeIDMismatch}
	}
	// A zero stored cluster id means the creator did not know it yet.
	if stored.ClusterID != 0 && want.ClusterID != 0 && stored.ClusterID != want.ClusterID {
		return &MismatchError{Stored: stored, Want: want, Err: ErrClusterIDMismatch}
	}
	return nil
}

// Replay is the durable state a node starts from.
type Replay struct {
	// WAL is open for appending; the caller owns it (usually by handing it to
	// the wal actor, which closes it when it stops).
	WAL         *wal.WAL
	Snapshotter *snap.Snapshotter
	// Storage holds the snapshot, hard state and entries replayed.
	Storage *raft.MemoryStorage
	// Snapshot is the newest snapshot that is both on disk and recorded in
	// the WAL; nil if there is none.
	Snapshot *raftpb.Snapshot
	// HardState is the last hard state in the WAL; empty if none was saved.
	HardState *raftpb.HardState
	// Fresh is true when no WAL existed and one was created by this Open: the
	// caller must bootstrap raft (or join) rather than restart it.
	Fresh bool
	// Metadata is what the WAL records about its member.
	Metadata Metadata
}

// Open creates or replays the data directory dataDir for the member meta.
// A directory whose WAL belongs to another member is refused with a
// *MismatchError (ErrNodeIDMismatch or ErrClusterIDMismatch). A zero
// meta.ClusterID takes the cluster id the WAL records; a new WAL needs one
// (ErrNoClusterID). A WAL whose last record was torn
// by a crash is repaired by cutting that record off: it was never fsynced, so
// raft never relied on it.
func Open(lg *zap.Logger, dataDir string, meta Metadata) (*Replay, error) {
	if lg == nil {
		lg = zap.NewNop()
	}
	walDir, snapDir := WALDir(dataDir), SnapDir(dataDir)
	for _, dir := range []string{dataDir, snapDir} {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	ss := snap.New(lg, snapDir)
	if !wal.Exist(walDir) {
		return create(lg, walDir, ss, meta)
	}
	return replay(lg, walDir, ss, meta)
}

func create(lg *zap.Logger, walDir string, ss *snap.Snapshotter, meta Metadata) (*Replay, error) {
	if meta.ClusterID == 0 {
		return nil, fmt.Errorf("create WAL in %s: %w", walDir, ErrNoClusterID)
	}
	w, err := wal.Create(lg, walDir, meta.marshal())
	if err != nil {
		return nil, fmt.Errorf("create WAL in %s: %w", walDir, err)
	}
	lg.Info("created a new WAL", zap.String("dir", walDir), zap.Uint64("node-id", meta.NodeID))
	return &Replay{
		WAL:         w,
		Snapshotter: ss,
		Storage:     raft.NewMemoryStorage(),
		HardState:   &raftpb.HardState{},
		Fresh:       true,
		Metadata:    meta,
	}, nil
}

func replay(lg *zap.Logger, walDir string, ss *snap.Snapshotter, meta Metadata) (*Replay, error) {
	// Only a snapshot the WAL recorded is safe to start from: a .snap file
	// written just before a crash may have no WAL record and no entries after it.
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return nil, fmt.Errorf("list WAL snapshot records in %s: %w", walDir, err)
	}
	snapshot, err := ss.LoadNewestAvailable(walSnaps)
	switch {
	case errors.Is(err, snap.ErrNoSnapshot):
		snapshot = nil
	case err != nil:
		return nil, fmt.Errorf("load newest snapshot: %w", err)
	}

	start := &walpb.Snapshot{Index: new(uint64(0)), Term: new(uint64(0))}
	if snapshot != nil {
		start.Index = new(snapshot.GetMetadata().GetIndex())
		start.Term = new(snapshot.GetMetadata().GetTerm())
	}
	w, rawMeta, hs, ents, err := readWAL(lg, walDir, start)
	if err != nil {
		return nil, err
	}
	r, err := fill(w, rawMeta, meta, snapshot, hs, ents)
	if err != nil {
		if cerr := w.Close(); cerr != nil {
			lg.Warn("failed to close WAL after a replay error", zap.Error(cerr))
		}
		return nil, err
	}
	r.Snapshotter = ss
	lg.Info("replayed WAL",
		zap.String("dir", walDir),
		zap.Uint64("snapshot-index", start.GetIndex()),
		zap.Int("entries", len(ents)),
		zap.Uint64("term", hs.GetTerm()),
		zap.Uint64("commit", hs.GetCommit()),
	)
	return r, nil
}

// readWAL opens the WAL at start and reads it to the end, repairing a torn
// tail once.
func readWAL(lg *zap.Logger, walDir string, start *walpb.Snapshot) (*wal.WAL, []byte, *raftpb.HardState, []*raftpb.Entry, error) {
	for repaired := false; ; repaired = true {
		w, err := wal.Open(lg, walDir, start)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("open WAL in %s: %w", walDir, err)
		}
		rawMeta, hs, ents, err := w.ReadAll()
		if err == nil {
			return w, rawMeta, hs, ents, nil
		}
		// The WAL must be closed before Repair can lock its last file.
		if cerr := w.Close(); cerr != nil {
			lg.Warn("failed to close WAL after a read error", zap.Error(cerr))
		}
		if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, nil, nil, fmt.Errorf("read WAL in %s: %w", walDir, err)
		}
		if !wal.Repair(lg, walDir) {
			return nil, nil, nil, nil, fmt.Errorf("repair torn WAL tail in %s: %w", walDir, err)
		}
		lg.Warn("WAL ended in a partly written record; repaired the tail by cutting it off",
			zap.String("dir", walDir), zap.Error(err))
	}
}

// fill checks the WAL's owner and loads what was replayed into a new
// MemoryStorage.
func fill(w *wal.WAL, rawMeta []byte, want Metadata, snapshot *raftpb.Snapshot, hs *raftpb.HardState, ents []*raftpb.Entry) (*Replay, error) {
	stored, err := unmarshalMetadata(rawMeta)
	if err != nil {
		return nil, err
	}
	if err := checkOwner(stored, want); err != nil {
		return nil, err
	}
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	ms := raft.NewMemoryStorage()
	if snapshot != nil {
		if err := ms.ApplySnapshot(withoutData(snapshot)); err != nil {
			return nil, fmt.Errorf("apply snapshot at index %d: %w", snapshot.GetMetadata().GetIndex(), err)
		}
	}
	if err := ms.SetHardState(hs); err != nil {
		return nil, fmt.Errorf("set hard state: %w", err)
	}
	if err := ms.Append(ents); err != nil {
		return nil, fmt.Errorf("append %d replayed entries: %w", len(ents), err)
	}
	return &Replay{
		WAL:       w,
		Storage:   ms,
		Snapshot:  snapshot,
		HardState: hs,
		Metadata:  stored,
	}, nil
}
