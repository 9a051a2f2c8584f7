package faults

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/persistence"
)

// writeWAL creates a WAL in dataDir holding one entry per size, each of
// that many bytes of data; the last record is the last entry.
func writeWAL(t *testing.T, dataDir string, sizes []int) {
	t.Helper()
	w, err := wal.Create(zap.NewNop(), persistence.WALDir(dataDir), nil)
	if err != nil {
		t.Fatal(err)
	}
	ents := make([]*raftpb.Entry, len(sizes))
	for i, n := range sizes {
		ents[i] = &raftpb.Entry{Term: new(uint64(1)), Index: new(uint64(i + 1)), Data: bytes.Repeat([]byte{'x'}, n)}
	}
	// An empty HardState is not written, so the entries come last.
	if err := w.Save(&raftpb.HardState{}, ents); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readWAL reads the WAL in dataDir the way a restarting member does first.
func readWAL(t *testing.T, dataDir string) ([]*raftpb.Entry, error) {
	t.Helper()
	w, err := wal.Open(zap.NewNop(), persistence.WALDir(dataDir), &walpb.Snapshot{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _, ents, err := w.ReadAll()
	return ents, err
}

// TearWAL must leave a tail that etcd's decoder reads as torn (not as
// corrupt) and that wal.Repair, as persistence.Open calls it, cuts off
// losing exactly the last entry. The sizes move the last record's end
// across a 512-byte sector boundary one byte at a time.
func TestTearWALIsRepairable(t *testing.T) {
	type tc struct {
		name  string
		sizes []int
		n     int
	}
	var cases []tc
	for last := 320; last <= 360; last++ {
		cases = append(cases, tc{name: "sector boundary", sizes: []int{10, 20, last}, n: 1})
	}
	cases = append(cases,
		tc{"one small entry", []int{1}, 1},
		tc{"small last entry", []int{100, 100, 5}, 7},
		tc{"entry over sectors", []int{10, 3000}, 3},
		tc{"n beyond the sector", []int{10, 3000}, 1000},
		tc{"n beyond the record", []int{10, 20}, 1 << 20},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeWAL(t, dir, c.sizes)
			m := &Member{ID: 1, DataDir: dir}
			if err := m.TearWAL(c.n); err != nil {
				t.Fatal(err)
			}
			if _, err := readWAL(t, dir); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("sizes %v: read after tear: %v, want io.ErrUnexpectedEOF", c.sizes, err)
			}
			if !wal.Repair(zap.NewNop(), persistence.WALDir(dir)) {
				t.Fatal("repair failed")
			}
			ents, err := readWAL(t, dir)
			if err != nil {
				t.Fatalf("read after repair: %v", err)
			}
			if len(ents) != len(c.sizes)-1 {
				t.Fatalf("%d entries after repair, want %d (all but the torn one)", len(ents), len(c.sizes)-1)
			}
		})
	}
}

// Why TearWAL zeroes a whole sector's piece: zeroing a few bytes inside a
// sector is a corrupt record, not a torn one, and no restart repairs it.
func TestZeroingAFewBytesIsCorruption(t *testing.T) {
	dir := t.TempDir()
	writeWAL(t, dir, []int{10, 3000})
	path, err := newestWAL(persistence.WALDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := lastRecord(f)
	if err == nil {
		// Three bytes well inside the record's data, inside one sector.
		_, err = f.WriteAt(make([]byte, 3), rec.start+100)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readWAL(t, dir); err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read after zeroing 3 bytes: %v, want a corruption error", err)
	}
}

func TestTearWALErrors(t *testing.T) {
	empty := t.TempDir()
	if err := os.MkdirAll(filepath.Join(empty, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dataDir string
		n       int
		want    error
	}{
		{"no WAL dir", t.TempDir(), 1, os.ErrNotExist},
		{"no WAL file", empty, 1, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Member{ID: 1, DataDir: tt.dataDir}
			if err := m.TearWAL(tt.n); !errors.Is(err, tt.want) {
				t.Fatalf("TearWAL: %v, want %v", err, tt.want)
			}
		})
	}
	m := &Member{ID: 1, DataDir: empty}
	if err := m.TearWAL(0); err == nil {
		t.Fatal("TearWAL(0) succeeded")
	}
}

// A record torn while it was appended is dropped on repair, and every
// complete record before it is kept, whatever the size of the last one.
func TestAppendTornRecordIsRepairable(t *testing.T) {
	for _, sizes := range [][]int{{1}, {100, 100, 5}, {10, 3000}, {10, 20, 333}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			dir := t.TempDir()
			writeWAL(t, dir, sizes)
			m := &Member{ID: 1, DataDir: dir}
			if err := m.AppendTornRecord(); err != nil {
				t.Fatal(err)
			}
			if _, err := readWAL(t, dir); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read with a torn record: %v, want io.ErrUnexpectedEOF", err)
			}
			if !wal.Repair(zap.NewNop(), persistence.WALDir(dir)) {
				t.Fatal("repair failed")
			}
			ents, err := readWAL(t, dir)
			if err != nil {
				t.Fatalf("read after repair: %v", err)
			}
			if len(ents) != len(sizes) {
				t.Fatalf("%d entries after repair, want all %d", len(ents), len(sizes))
			}
		})
	}
}
