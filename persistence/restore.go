package persistence

import (
	"fmt"
	"os"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// CreateAt makes the log of a data dir that starts at a snapshot instead
// of at index 0: the log of a member restored from a backup, whose db
// already holds everything up to md's index. It writes the snapshot's
// .snap file (metadata only: the db is the state), a WAL for meta that
// records the snapshot, and a hard state that commits it, so that Open
// replays it as the log of a member that took that snapshot, and raft
// restarts with md's configuration rather than bootstrapping. Every
// member of the new cluster gets the same md: they agree on the log's
// start and term without a word to each other.
//
// The data dir must have no WAL yet. What CreateAt writes is synced; the
// caller makes the whole data dir appear at once (it restores into a
// temporary directory and renames it).
func CreateAt(lg *zap.Logger, dataDir string, meta Metadata, md *raftpb.SnapshotMetadata) error {
	if lg == nil {
		lg = zap.NewNop()
	}
	if meta.ClusterID == 0 {
		return ErrNoClusterID
	}
	walDir, snapDir := WALDir(dataDir), SnapDir(dataDir)
	if wal.Exist(walDir) {
		return fmt.Errorf("data dir %s already has a WAL", dataDir)
	}
	if err := os.MkdirAll(snapDir, dirMode); err != nil {
		return fmt.Errorf("create %s: %w", snapDir, err)
	}
	if err := writeSnapFile(snapDir, &raftpb.Snapshot{Metadata: md}); err != nil {
		return fmt.Errorf("write the snapshot: %w", err)
	}
	w, err := wal.Create(lg, walDir, meta.marshal())
	if err != nil {
		return fmt.Errorf("create WAL in %s: %w", walDir, err)
	}
	index, term := md.GetIndex(), md.GetTerm()
	err = w.SaveSnapshot(&walpb.Snapshot{Index: new(index), Term: new(term), ConfState: md.GetConfState()})
	if err == nil {
		// Save syncs: the snapshot record and the hard state are durable
		// once it returns.
		err = w.Save(&raftpb.HardState{Term: new(term), Vote: new(uint64(0)), Commit: new(index)}, nil)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record the snapshot at index %d in the WAL: %w", index, err)
	}
	return nil
}
