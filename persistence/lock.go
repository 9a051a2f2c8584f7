package persistence

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

// lockFile is the file in a data dir that one running member holds a lock
// on. The WAL locks its own files too, but only once it is open, and says
// so in terms of its files; this lock is taken first and fails in the
// operator's terms.
const lockFile = "lock"

// LockDataDir creates dataDir if needed and takes the lock that makes one
// process its only user. The lock is released when the returned Closer is
// closed or the process ends, however it ends. A data dir held by another
// process (or by another member in this one) is refused with
// ErrDataDirLocked.
func LockDataDir(dataDir string) (io.Closer, error) {
	if err := os.MkdirAll(dataDir, dirMode); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, lockFile)
	f, err := fileutil.TryLockFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if errors.Is(err, fileutil.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrDataDirLocked, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data dir %s: %w", dataDir, err)
	}
	return f, nil
}
