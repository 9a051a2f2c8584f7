package backup

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/persistence"
)

// ErrDataDirInUse is returned by Restore for a data dir that exists and is
// not empty: a restore never writes over a member's data.
var ErrDataDirInUse = errors.New("data dir exists and is not empty")

// RestoreConfig describes one member of the new cluster a backup is
// restored into. Every member is restored from the same backup with the
// same Members, ClusterID and Token, and its own ID and DataDir.
type RestoreConfig struct {
	Backup  string            // the backup file
	DataDir string            // made by Restore; absent or empty before
	ID      uint64            // this member, one of Members
	Members map[uint64]string // the new cluster's voters: id → peer URL
	// What the WAL records of the member (persistence.Metadata): the new
	// cluster's id, and the --cluster and --initial-cluster-token it was
	// derived from, for refusals that say what the data dir holds.
	ClusterID      uint64
	InitialCluster string
	Token          string
	Logger         *zap.Logger
}

// dbFile is the state machine's db in a data dir (kv.DBFile: backup may
// not import kv, whose actor is far above a file format).
const dbFile = "db"

// Restore makes cfg.DataDir from a backup, as etcdutl's snapshot restore
// does: the backup's db, rebased onto the new cluster's members
// (store.Rebase), and a log that starts at the backup's index
// (persistence.CreateAt). The members then start with the usual command,
// as members of a new cluster whose first entry follows the backup's
// index: revisions go on upwards from the backup's.
//
// The checksum is checked on the very bytes that become the db, and the
// data dir appears whole or not at all: everything is written into a
// temporary directory beside it, synced, and renamed into place.
func Restore(cfg RestoreConfig) (Info, error) {
	if _, ok := cfg.Members[cfg.ID]; !ok {
		return Info{}, fmt.Errorf("member %d is not among the new cluster's members", cfg.ID)
	}
	if err := checkEmpty(cfg.DataDir); err != nil {
		return Info{}, err
	}
	parent := filepath.Dir(filepath.Clean(cfg.DataDir))
	tmp, err := os.MkdirTemp(parent, filepath.Base(cfg.DataDir)+".restore-*")
	if err != nil {
		return Info{}, fmt.Errorf("make a directory beside %s: %w", cfg.DataDir, err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(tmp)
		}
	}()
	info, err := copyChecked(cfg.Backup, filepath.Join(tmp, dbFile))
	if err != nil {
		return Info{}, err
	}
	if info.Index == 0 {
		return Info{}, fmt.Errorf("%w: %s holds no applied entry", ErrCorrupt, cfg.Backup)
	}
	// raft's terms start at 1; a db of a build that recorded none says 0.
	term := max(info.Term, 1)
	if err := rebase(filepath.Join(tmp, dbFile), cfg.Members, term); err != nil {
		return Info{}, err
	}
	cs := &raftpb.ConfState{Voters: slices.Sorted(maps.Keys(cfg.Members))}
	meta := persistence.Metadata{NodeID: cfg.ID, ClusterID: cfg.ClusterID, InitialCluster: cfg.InitialCluster, Token: cfg.Token}
	md := &raftpb.SnapshotMetadata{Index: new(info.Index), Term: new(term), ConfState: cs}
	if err := persistence.CreateAt(cfg.Logger, tmp, meta, md); err != nil {
		return Info{}, err
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return Info{}, fmt.Errorf("make %s private: %w", tmp, err)
	}
	// An empty data dir the operator made goes, for the rename to take
	// its place.
	if err := os.Remove(cfg.DataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Info{}, fmt.Errorf("replace the empty %s: %w", cfg.DataDir, err)
	}
	if err := os.Rename(tmp, cfg.DataDir); err != nil {
		return Info{}, fmt.Errorf("move the restored data dir into place: %w", err)
	}
	done = true
	syncDir(parent)
	return info, nil
}

// checkEmpty refuses a data dir that holds anything.
func checkEmpty(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
	}
	return nil
}

// copyChecked copies the db of the backup at src to dst, hashing what it
// copies, and checks the hash against the backup's checksum before it
// reads the db's meta data: what is checked is what is restored.
func copyChecked(src, dst string) (Info, error) {
	in, err := os.Open(src)
	if err != nil {
		return Info{}, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return Info{}, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Info{}, err
	}
	defer out.Close()
	info := Info{Size: st.Size()}
	if info.Sum, err = verify(in, info.Size, src, out); err != nil {
		return Info{}, err
	}
	if err := out.Sync(); err != nil {
		return Info{}, fmt.Errorf("sync %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return Info{}, fmt.Errorf("close %s: %w", dst, err)
	}
	if info.Info, err = store.ReadInfo(dst); err != nil {
		return Info{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return info, nil
}

// rebase opens the db at path and makes it the new cluster's (store.Rebase).
func rebase(path string, members map[uint64]string, term uint64) error {
	st, _, err := store.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := st.Rebase(members, term); err != nil {
		st.Fail()
		_ = st.Close()
		return fmt.Errorf("rebase the db onto the new members: %w", err)
	}
	// Close commits (with the meta data) and syncs: bbolt fsyncs every
	// commit.
	if err := st.Close(); err != nil {
		return fmt.Errorf("write the restored db: %w", err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
