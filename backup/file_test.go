package backup_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/raftkv/node/backup"
	"github.com/raftkv/node/kv/backend/backendtest"
	"github.com/raftkv/node/kv/store"
)

// stream is a backup of a store holding n keys, as a member sends it.
func stream(t *testing.T, n int) []byte {
	t.Helper()
	st, err := store.New(backendtest.NewTmpBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := st.Put(string(rune('a'+i)), []byte("v"), uint64(10+i), 0); err != nil {
			t.Fatal(err)
		}
	}
	st.SetApplied(uint64(10+n), 2, nil)
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, size, _, err := st.Backup()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	db, err := io.ReadAll(rc)
	if err != nil || int64(len(db)) != size {
		t.Fatalf("backup stream: %d bytes of %d, %v", len(db), size, err)
	}
	sum := sha256.Sum256(db)
	return append(db, sum[:]...)
}

func TestWriteToAndStatus(t *testing.T) {
	good := stream(t, 3)
	for _, tc := range []struct {
		name    string
		data    []byte
		corrupt bool
	}{
		{"whole", good, false},
		{"cut short", good[:len(good)-100], true},
		{"without its checksum", good[:len(good)-backup.SumSize], true},
		{"a byte changed", func() []byte { b := bytes.Clone(good); b[4096+7] ^= 1; return b }(), true},
		{"empty", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "backup.db")
			info, err := backup.WriteTo(bytes.NewReader(tc.data), path)
			if tc.corrupt {
				if !errors.Is(err, backup.ErrCorrupt) {
					t.Fatalf("got %v, want ErrCorrupt", err)
				}
				if _, serr := os.Stat(path); !os.IsNotExist(serr) {
					t.Fatalf("a corrupt backup was left at %s", path)
				}
				if left, _ := filepath.Glob(path + ".part-*"); len(left) != 0 {
					t.Fatalf("temporary files left: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Keys != 3 || info.Index != 13 || info.Revision != 12 || info.Size != int64(len(good)) {
				t.Fatalf("info %+v: want 3 keys, index 13, revision 12, %d bytes", info, len(good))
			}
			again, err := backup.Status(path)
			if err != nil || again != info {
				t.Fatalf("status %+v, %v; want %+v", again, err, info)
			}
		})
	}
}
