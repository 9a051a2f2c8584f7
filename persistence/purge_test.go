package persistence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

func walFileName(seq, index uint64) string {
	return fmt.Sprintf("%016x-%016x.wal", seq, index)
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// namesIn lists the regular files in dir ending in suffix, sorted; nil if dir cannot
// be read. It is safe to call off the test goroutine.
func namesIn(dir, suffix string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// fillDir creates n files named by name(i) plus files purge must ignore.
func fillDir(t *testing.T, dir string, n int, name func(i uint64) string) []string {
	t.Helper()
	var all []string
	for i := range uint64(n) {
		writeFile(t, filepath.Join(dir, name(i)))
		all = append(all, name(i))
	}
	writeFile(t, filepath.Join(dir, "0000000000000000-0000000000000001.snap.broken"))
	writeFile(t, filepath.Join(dir, "0.tmp"))
	if err := os.Mkdir(filepath.Join(dir, "sub"+walSuffix), 0o700); err != nil {
		t.Fatal(err)
	}
	slices.Sort(all)
	return all
}

func TestPurgeKeepsNewest(t *testing.T) {
	kinds := []struct {
		suffix string
		name   func(i uint64) string
		purge  func(dir string, keep int) ([]string, error)
	}{
		{snapSuffix, func(i uint64) string { return snapFileName(i/3+1, i*7) }, func(dir string, keep int) ([]string, error) {
			return PurgeSnapFiles(nil, dir, keep)
		}},
		{walSuffix, func(i uint64) string { return walFileName(i, i*100) }, func(dir string, keep int) ([]string, error) {
			return PurgeWALFiles(nil, dir, keep)
		}},
	}
	counts := []struct{ files, keep int }{
		{0, 5}, {3, 5}, {5, 5}, {6, 5}, {12, 5}, {12, 1}, {20, 3},
	}
	for _, kind := range kinds {
		for _, c := range counts {
			t.Run(fmt.Sprintf("%s/%d-files/keep-%d", kind.suffix, c.files, c.keep), func(t *testing.T) {
				dir := t.TempDir()
				all := fillDir(t, dir, c.files, kind.name)
				cut := max(0, c.files-c.keep)

				removed, err := kind.purge(dir, c.keep)
				if err != nil {
					t.Fatal(err)
				}
				var wantRemoved []string
				for _, n := range all[:cut] {
					wantRemoved = append(wantRemoved, filepath.Join(dir, n))
				}
				if !slices.Equal(removed, wantRemoved) {
					t.Errorf("removed %v, want %v", removed, wantRemoved)
				}
				if got := namesIn(dir, kind.suffix); !slices.Equal(got, all[cut:]) {
					t.Errorf("left %v, want %v", got, all[cut:])
				}
				if _, err := os.Stat(filepath.Join(dir, "0.tmp")); err != nil {
					t.Errorf("purge touched a file of another kind: %v", err)
				}
			})
		}
	}
}

func TestPurgeStopsAtLockedWALFile(t *testing.T) {
	dir := t.TempDir()
	all := fillDir(t, dir, 8, func(i uint64) string { return walFileName(i, i*10) })
	// As the open WAL holds it, so is every file after it needed.
	l, err := fileutil.LockFile(filepath.Join(dir, all[2]), os.O_WRONLY, fileutil.PrivateFileMode)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	removed, err := PurgeWALFiles(nil, dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, all[0]), filepath.Join(dir, all[1])}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if got := namesIn(dir, walSuffix); !slices.Equal(got, all[2:]) {
		t.Fatalf("left %v, want %v", got, all[2:])
	}

	// The locks purge took are released: with the holder gone, the rest go.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := PurgeWALFiles(nil, dir, 2); err != nil {
		t.Fatal(err)
	}
	if got := namesIn(dir, walSuffix); !slices.Equal(got, all[6:]) {
		t.Fatalf("left %v, want %v", got, all[6:])
	}
	for _, n := range all[6:] {
		lf, err := fileutil.TryLockFile(filepath.Join(dir, n), os.O_WRONLY, fileutil.PrivateFileMode)
		if err != nil {
			t.Fatalf("%s still locked after purge: %v", n, err)
		}
		lf.Close()
	}
}

func TestPurgeRejectsKeepBelowOne(t *testing.T) {
	dir := t.TempDir()
	all := fillDir(t, dir, 3, func(i uint64) string { return walFileName(i, i) })
	for _, keep := range []int{0, -1} {
		if _, err := PurgeWALFiles(nil, dir, keep); !errors.Is(err, errBadKeep) {
			t.Errorf("keep %d: error %v, want errBadKeep", keep, err)
		}
		if _, err := PurgeSnapFiles(nil, dir, keep); !errors.Is(err, errBadKeep) {
			t.Errorf("keep %d: error %v, want errBadKeep", keep, err)
		}
	}
	if got := namesIn(dir, walSuffix); !slices.Equal(got, all) {
		t.Fatalf("files removed despite the error: left %v", got)
	}
}

func TestPurgeMissingDirIsAnError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := PurgeSnapFiles(nil, missing, 5); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PurgeSnapFiles error = %v, want ErrNotExist", err)
	}
	if _, err := PurgeWALFiles(nil, missing, 5); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("PurgeWALFiles error = %v, want ErrNotExist", err)
	}
}
