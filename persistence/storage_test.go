package persistence

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"
)

var testMeta = Metadata{NodeID: 1, ClusterID: 0x1000}

// openT opens dataDir and closes the WAL when the test ends unless the test
// closed it itself.
func openT(t *testing.T, lg *zap.Logger, dataDir string, meta Metadata) *Replay {
	t.Helper()
	r, err := Open(lg, dataDir, meta)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

func closeWAL(t *testing.T, r *Replay) {
	t.Helper()
	if err := r.WAL.Close(); err != nil {
		t.Fatalf("close WAL: %v", err)
	}
}

// storedEntries reads every entry the MemoryStorage holds.
func storedEntries(t *testing.T, ms *raft.MemoryStorage) []*raftpb.Entry {
	t.Helper()
	first, _ := ms.FirstIndex()
	last, _ := ms.LastIndex()
	if last < first {
		return nil
	}
	es, err := ms.Entries(first, last+1, ^uint64(0))
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", first, last+1, err)
	}
	return es
}

func sameEntries(t *testing.T, got, want []*raftpb.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got entries [%s], want [%s]", indexes(got), indexes(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// sameSnapshot compares what matters of two snapshots; proto.Equal would
// also tell an unset optional field from one set to its zero value.
func sameSnapshot(got, want *raftpb.Snapshot) bool {
	gm, wm := got.GetMetadata(), want.GetMetadata()
	return gm.GetIndex() == wm.GetIndex() && gm.GetTerm() == wm.GetTerm() &&
		bytes.Equal(got.GetData(), want.GetData()) &&
		gm.GetConfState().Equivalent(wm.GetConfState()) == nil
}

func TestOpenFreshCreatesLayout(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "node1")
	r := openT(t, nil, dataDir, testMeta)
	closeWAL(t, r)

	if !r.Fresh {
		t.Error("Fresh = false for a new data dir")
	}
	if r.Snapshot != nil {
		t.Errorf("Snapshot = %v, want nil", r.Snapshot)
	}
	if !raft.IsEmptyHardState(r.HardState) {
		t.Errorf("HardState = %v, want empty", r.HardState)
	}
	if last, _ := r.Storage.LastIndex(); last != 0 {
		t.Errorf("Storage.LastIndex = %d, want 0", last)
	}
	if r.Metadata != testMeta {
		t.Errorf("Metadata = %+v, want %+v", r.Metadata, testMeta)
	}
	for _, dir := range []string{dataDir, SnapDir(dataDir)} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s has mode %o, want 700", dir, perm)
		}
	}
	walNames, _ := filepath.Glob(filepath.Join(WALDir(dataDir), "*.wal"))
	if len(walNames) != 1 {
		t.Errorf("WAL dir holds %v, want one .wal file", walNames)
	}

	again := openT(t, nil, dataDir, testMeta)
	closeWAL(t, again)
	if again.Fresh {
		t.Error("Fresh = true on the second Open")
	}
	if again.Metadata != testMeta {
		t.Errorf("replayed Metadata = %+v, want %+v", again.Metadata, testMeta)
	}
}

func TestOpenReplaysEntriesAndHardState(t *testing.T) {
	dataDir := t.TempDir()
	r := openT(t, nil, dataDir, testMeta)
	want := entRange(1, 5, 2)
	wantHS := newHS(2, 1, 4)
	if err := r.WAL.Save(newHS(1, 1, 0), want[:2]); err != nil {
		t.Fatal(err)
	}
	if err := r.WAL.Save(wantHS, want[2:]); err != nil {
		t.Fatal(err)
	}
	closeWAL(t, r)

	got := openT(t, nil, dataDir, testMeta)
	defer closeWAL(t, got)
	if got.Fresh {
		t.Error("Fresh = true for an existing WAL")
	}
	if !proto.Equal(got.HardState, wantHS) {
		t.Errorf("HardState = %s, want %s", describeHS(got.HardState), describeHS(wantHS))
	}
	stored, _, _ := got.Storage.InitialState()
	if !proto.Equal(stored, wantHS) {
		t.Errorf("Storage hard state = %s, want %s", describeHS(stored), describeHS(wantHS))
	}
	sameEntries(t, storedEntries(t, got.Storage), want)

	// The replayed WAL is ready for appending: a later Open sees the append.
	if err := got.WAL.Save(newHS(2, 1, 5), []*raftpb.Entry{ent(6, 2, "six")}); err != nil {
		t.Fatalf("Save after replay: %v", err)
	}
}

func TestOpenRefusesAnotherMembersDir(t *testing.T) {
	tests := []struct {
		name    string
		created Metadata
		open    Metadata
		wantErr error
	}{
		{"same member", Metadata{NodeID: 1, ClusterID: 7}, Metadata{NodeID: 1, ClusterID: 7}, nil},
		{"other node id", Metadata{NodeID: 1, ClusterID: 7}, Metadata{NodeID: 2, ClusterID: 7}, ErrNodeIDMismatch},
		{"other cluster id", Metadata{NodeID: 1, ClusterID: 7}, Metadata{NodeID: 1, ClusterID: 8}, ErrClusterIDMismatch},
		{"cluster id taken from the data dir", Metadata{NodeID: 1, ClusterID: 7, Joined: true}, Metadata{NodeID: 1}, nil},
		{"how the member was created is kept", Metadata{NodeID: 1, ClusterID: 7, InitialCluster: "http://a:1,http://b:2", Token: "t"}, Metadata{NodeID: 1, ClusterID: 7}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			closeWAL(t, openT(t, nil, dataDir, tt.created))

			r, err := Open(nil, dataDir, tt.open)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			var mismatch *MismatchError
			if err != nil && (!errors.As(err, &mismatch) || mismatch.Stored != tt.created) {
				t.Errorf("Open error %v does not say what the data dir holds (%+v)", err, tt.created)
			}
			if err == nil {
				if r.Metadata != tt.created {
					t.Errorf("Metadata = %+v, want the stored %+v", r.Metadata, tt.created)
				}
				closeWAL(t, r)
				return
			}
			// A refused Open must not keep the WAL's file locks.
			closeWAL(t, openT(t, nil, dataDir, tt.created))
		})
	}
}

func TestOpenNeedsAClusterIDToCreate(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "d")
	if _, err := Open(nil, dataDir, Metadata{NodeID: 1}); !errors.Is(err, ErrNoClusterID) {
		t.Fatalf("Open of a fresh dir without a cluster id: %v, want ErrNoClusterID", err)
	}
	if wal.Exist(WALDir(dataDir)) {
		t.Fatal("a WAL was created without a cluster id")
	}
}

func TestMetadataEncoding(t *testing.T) {
	legacy := make([]byte, metadataSize)
	legacy[7], legacy[15] = 3, 0x10
	tests := []struct {
		name    string
		in      []byte
		want    Metadata
		wantErr error
	}{
		{"earlier versions' 16 bytes", legacy, Metadata{NodeID: 3, ClusterID: 0x10}, nil},
		{"round trip", Metadata{NodeID: 1, ClusterID: 2, InitialCluster: "http://x:1", Token: "tok", Joined: true}.marshal(),
			Metadata{NodeID: 1, ClusterID: 2, InitialCluster: "http://x:1", Token: "tok", Joined: true}, nil},
		{"short", legacy[:15], Metadata{}, ErrBadMetadata},
		{"unknown extension", append(append([]byte{}, legacy...), 9, 0), Metadata{}, ErrBadMetadata},
		{"truncated string", append(append([]byte{}, legacy...), metadataExtVersion, 0, 5, 'a'), Metadata{}, ErrBadMetadata},
		{"trailing bytes", append(Metadata{NodeID: 1, ClusterID: 2}.marshal(), 0), Metadata{}, ErrBadMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unmarshalMetadata(tt.in)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("unmarshalMetadata = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDataDir(dir); !errors.Is(err, ErrDataDirLocked) {
		t.Fatalf("second lock: %v, want ErrDataDirLocked", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	_ = l.Close()
}

// lastWALFile returns the path of the newest .wal file in walDir.
func lastWALFile(t *testing.T, walDir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(walDir, "*.wal"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no .wal files in %s (%v)", walDir, err)
	}
	sort.Strings(names)
	return names[len(names)-1]
}

func TestOpenRepairsTornTail(t *testing.T) {
	dataDir := t.TempDir()
	r := openT(t, nil, dataDir, testMeta)
	want := entRange(1, 4, 1)
	wantHS := newHS(1, 1, 4)
	if err := r.WAL.Save(wantHS, want); err != nil {
		t.Fatal(err)
	}
	// The last record is an entry on its own, so the cut below tears it and
	// nothing else.
	if err := r.WAL.Save(&raftpb.HardState{}, []*raftpb.Entry{ent(5, 1, "the fifth entry, to be torn")}); err != nil {
		t.Fatal(err)
	}
	closeWAL(t, r)

	// The segment is preallocated with zeros; the data ends at the last
	// non-zero byte. Cutting a few bytes before it ends the file mid-record.
	path := lastWALFile(t, WALDir(dataDir))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndexFunc(data, func(r rune) bool { return r != 0 })
	if end < 8 {
		t.Fatalf("no data found in %s", path)
	}
	if err := os.Truncate(path, int64(end-4)); err != nil {
		t.Fatal(err)
	}

	core, logs := observer.New(zapcore.WarnLevel)
	got := openT(t, zap.New(core), dataDir, testMeta)
	sameEntries(t, storedEntries(t, got.Storage), want)
	if !proto.Equal(got.HardState, wantHS) {
		t.Errorf("HardState = %s, want %s", describeHS(got.HardState), describeHS(wantHS))
	}
	if n := logs.FilterMessageSnippet("repaired").Len(); n != 1 {
		t.Errorf("%d warnings about a repaired tail, want 1; logs: %v", n, logs.All())
	}
	if _, err := os.Stat(path + ".broken"); err != nil {
		t.Errorf("repair left no copy of the torn file: %v", err)
	}

	// The repaired WAL takes the lost entry again and keeps it.
	redo := ent(5, 1, "rewritten")
	if err := got.WAL.Save(newHS(1, 1, 5), []*raftpb.Entry{redo}); err != nil {
		t.Fatalf("Save after repair: %v", err)
	}
	closeWAL(t, got)
	final := openT(t, nil, dataDir, testMeta)
	defer closeWAL(t, final)
	sameEntries(t, storedEntries(t, final.Storage), append(want, redo))
}

func TestOpenStartsFromNewestRecordedSnapshot(t *testing.T) {
	dataDir := t.TempDir()
	r := openT(t, nil, dataDir, testMeta)
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	all := entRange(1, 12, 1)
	if err := r.WAL.Save(newHS(1, 1, 10), all[:10]); err != nil {
		t.Fatal(err)
	}
	snapshot := &raftpb.Snapshot{
		Data:     []byte(`{"a":"1"}`),
		Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(5)), Term: new(uint64(1)), ConfState: cs},
	}
	if err := r.Snapshotter.SaveSnap(snapshot); err != nil {
		t.Fatal(err)
	}
	if err := r.WAL.SaveSnapshot(&walpb.Snapshot{Index: new(uint64(5)), Term: new(uint64(1)), ConfState: cs}); err != nil {
		t.Fatal(err)
	}
	// A .snap file the WAL never recorded (a crash between the two writes)
	// must not be used, even though it is newer.
	unrecorded := &raftpb.Snapshot{
		Data:     []byte(`{"a":"2"}`),
		Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(8)), Term: new(uint64(1)), ConfState: cs},
	}
	if err := r.Snapshotter.SaveSnap(unrecorded); err != nil {
		t.Fatal(err)
	}
	wantHS := newHS(1, 1, 12)
	if err := r.WAL.Save(wantHS, all[10:]); err != nil {
		t.Fatal(err)
	}
	closeWAL(t, r)

	got := openT(t, nil, dataDir, testMeta)
	defer closeWAL(t, got)
	if got.Snapshot == nil || !sameSnapshot(got.Snapshot, snapshot) {
		t.Fatalf("Snapshot = %v, want %v", got.Snapshot, snapshot)
	}
	// Memory holds the snapshot's metadata; its data stays on disk (and in
	// Replay.Snapshot, for the state machine to start from).
	stored, err := got.Storage.Snapshot()
	if err != nil || !sameSnapshot(stored, withoutData(snapshot)) || len(stored.GetData()) != 0 {
		t.Errorf("Storage.Snapshot = %v (%v), want the metadata of %v", stored, err, snapshot)
	}
	if !proto.Equal(got.HardState, wantHS) {
		t.Errorf("HardState = %s, want %s", describeHS(got.HardState), describeHS(wantHS))
	}
	if first, _ := got.Storage.FirstIndex(); first != 6 {
		t.Errorf("Storage.FirstIndex = %d, want 6", first)
	}
	sameEntries(t, storedEntries(t, got.Storage), all[5:])
	_, gotCS, _ := got.Storage.InitialState()
	if err := gotCS.Equivalent(cs); err != nil {
		t.Errorf("ConfState = %v, want %v", gotCS, cs)
	}
}
