package persistence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.uber.org/zap"
)

const (
	snapSuffix = ".snap"
	walSuffix  = ".wal"

	// defaultKeep is how many newest files of each kind purge leaves, as etcd does.
	defaultKeep = 5
)

// errBadKeep guards against a keep count that would delete every file.
var errBadKeep = errors.New("keep count must be at least 1")

// PurgeSnapFiles removes the oldest .snap files in dir so that at most keep
// remain, and returns the paths it removed. File names sort by term then
// index, so name order is age order.
func PurgeSnapFiles(lg *zap.Logger, dir string, keep int) ([]string, error) {
	lg = orNop(lg)
	names, err := oldestBeyond(dir, snapSuffix, keep)
	if err != nil {
		lg.Warn("failed to list snapshot files for purge", zap.String("dir", dir), zap.Error(err))
		return nil, err
	}
	var removed []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		if err := os.Remove(p); err != nil {
			lg.Warn("failed to purge a snapshot file", zap.String("path", p), zap.Error(err))
			return removed, fmt.Errorf("purge %s: %w", p, err)
		}
		removed = append(removed, p)
		lg.Debug("purged snapshot file", zap.String("path", p))
	}
	return removed, nil
}

// PurgeWALFiles removes the oldest .wal files in dir so that at most keep
// remain, and returns the paths it removed. A file the open WAL still holds
// is locked; purge stops at the first such file, because every newer file is
// needed too.
func PurgeWALFiles(lg *zap.Logger, dir string, keep int) ([]string, error) {
	lg = orNop(lg)
	names, err := oldestBeyond(dir, walSuffix, keep)
	if err != nil {
		lg.Warn("failed to list WAL files for purge", zap.String("dir", dir), zap.Error(err))
		return nil, err
	}
	var removed []string
	for _, name := range names {
		p := filepath.Join(dir, name)
		ok, err := removeUnlocked(p)
		if ok {
			removed = append(removed, p)
			lg.Debug("purged WAL file", zap.String("path", p))
		}
		if err != nil {
			lg.Warn("failed to purge a WAL file", zap.String("path", p), zap.Error(err))
			return removed, err
		}
		if !ok {
			lg.Debug("WAL file still in use; purge stops here", zap.String("path", p))
			break
		}
	}
	return removed, nil
}

// removeUnlocked removes the file at p if nobody holds its lock. Holding the
// lock while removing keeps the WAL from taking the file in between.
func removeUnlocked(p string) (removed bool, err error) {
	l, err := fileutil.TryLockFile(p, os.O_WRONLY, fileutil.PrivateFileMode)
	if errors.Is(err, fileutil.ErrLocked) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", p, err)
	}
	rmErr := os.Remove(p)
	closeErr := l.Close()
	if rmErr != nil {
		return false, fmt.Errorf("purge %s: %w", p, rmErr)
	}
	if closeErr != nil {
		return true, fmt.Errorf("unlock %s: %w", p, closeErr)
	}
	return true, nil
}

// oldestBeyond lists the names in dir ending in suffix, oldest first, minus
// the keep newest.
func oldestBeyond(dir, suffix string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("purge %s files in %s: %w (got %d)", suffix, dir, errBadKeep, keep)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) <= keep {
		return nil, nil
	}
	return names[:len(names)-keep], nil
}

func orNop(lg *zap.Logger) *zap.Logger {
	if lg == nil {
		return zap.NewNop()
	}
	return lg
}
