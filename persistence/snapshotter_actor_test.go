package persistence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/raftkv/node/messages"
)

// recordSeen is what the stand-in wal actor saw when a RecordSnapshot arrived.
type recordSeen struct {
	index      uint64
	fileExists bool     // the snapshot's own .snap file
	firstIndex uint64   // MemoryStorage.FirstIndex
	snapFiles  []string // every .snap file in the directory
}

type snapHarness struct {
	sys      *actor.ActorSystem
	pid      *actor.PID
	snapDir  string
	walDir   string
	storage  *raft.MemoryStorage
	records  chan recordSeen
	fatals   chan messages.Fatal
	recorded error // what the stand-in wal actor answers
}

func snapFileName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x.snap", term, index)
}

func listSnapFiles(dir string) []string { return namesIn(dir, snapSuffix) }

// startSnapshotter runs a snapshotter actor on a real snap.Snapshotter and a
// MemoryStorage holding entries 1..100 of term 1. Its wal actor is a stand-in
// that notes what was on disk and in memory when RecordSnapshot arrived.
func startSnapshotter(t *testing.T, catchUp uint64, maxSnap, maxWAL int, recordErr error) *snapHarness {
	t.Helper()
	dir := t.TempDir()
	h := &snapHarness{
		sys:      newSystem(t),
		snapDir:  filepath.Join(dir, "snap"),
		walDir:   filepath.Join(dir, "wal"),
		storage:  raft.NewMemoryStorage(),
		records:  make(chan recordSeen, 16),
		fatals:   make(chan messages.Fatal, 4),
		recorded: recordErr,
	}
	for _, d := range []string{h.snapDir, h.walDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.storage.Append(entRange(1, 100, 1)); err != nil {
		t.Fatal(err)
	}
	walProbe := h.sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		m, ok := c.Message().(messages.RecordSnapshot)
		if !ok {
			return
		}
		idx := m.Snapshot.GetIndex()
		_, statErr := os.Stat(filepath.Join(h.snapDir, snapFileName(m.Snapshot.GetTerm(), idx)))
		first, _ := h.storage.FirstIndex()
		h.records <- recordSeen{index: idx, fileExists: statErr == nil, firstIndex: first, snapFiles: listSnapFiles(h.snapDir)}
		c.Respond(messages.SnapshotRecorded{Index: idx, Err: h.recorded})
	}))
	h.pid = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return NewSnapshotterActor(SnapshotterConfig{
			SnapDir:        h.snapDir,
			WALDir:         h.walDir,
			Storage:        h.storage,
			WAL:            walProbe,
			CatchUpEntries: catchUp,
			MaxSnapFiles:   maxSnap,
			MaxWALFiles:    maxWAL,
			Fatal:          func(f messages.Fatal) { h.fatals <- f },
		})
	}))
	t.Cleanup(func() { stop(t, h.sys, h.pid) })
	return h
}

func (h *snapHarness) create(index uint64) {
	h.sys.Root.Send(h.pid, messages.CreateSnapshot{
		Index:     index,
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		Data:      fmt.Appendf(nil, "state@%d", index),
	})
}

func (h *snapHarness) firstIndex() uint64 {
	first, _ := h.storage.FirstIndex()
	return first
}

// barrier returns once the snapshotter has handled everything sent before.
func (h *snapHarness) barrier(t *testing.T) {
	t.Helper()
	if _, err := h.sys.Root.RequestFuture(h.pid, messages.SaveSnapshotFile{Snapshot: &raftpb.Snapshot{}}, waitTimeout).Result(); err != nil {
		t.Fatalf("barrier: %v", err)
	}
}

func TestSnapshotterOrdersFileRecordCompactPurge(t *testing.T) {
	const catchUp = 10
	h := startSnapshotter(t, catchUp, 1, 1, nil)

	h.create(20)
	first := recv(t, "RecordSnapshot 20", h.records)
	if !first.fileExists {
		t.Fatal("RecordSnapshot arrived before the .snap file was written")
	}
	if first.firstIndex != 1 {
		t.Fatalf("log compacted to %d before the WAL record", first.firstIndex)
	}
	waitFor(t, "compaction behind 20", func() bool { return h.firstIndex() == 20-catchUp+1 })

	h.create(40)
	second := recv(t, "RecordSnapshot 40", h.records)
	if !second.fileExists {
		t.Fatal("RecordSnapshot arrived before the .snap file was written")
	}
	if second.firstIndex != 20-catchUp+1 {
		t.Fatalf("FirstIndex = %d when the record was asked for, want %d (no compaction yet)", second.firstIndex, 20-catchUp+1)
	}
	if want := []string{snapFileName(1, 20), snapFileName(1, 40)}; !slices.Equal(second.snapFiles, want) {
		t.Fatalf("snap files before the record = %v, want %v (no purge yet)", second.snapFiles, want)
	}
	waitFor(t, "compaction behind 40 and purge", func() bool {
		return h.firstIndex() == 40-catchUp+1 && slices.Equal(listSnapFiles(h.snapDir), []string{snapFileName(1, 40)})
	})
}

func TestSnapshotterPurgeKeepsFiveByDefault(t *testing.T) {
	const catchUp = 5
	h := startSnapshotter(t, catchUp, 0, 0, nil)
	// WAL files nobody holds: all but the newest five may go.
	for i := range uint64(7) {
		writeFile(t, filepath.Join(h.walDir, walFileName(i, i*10)))
	}
	var want []string
	for i := uint64(1); i <= 8; i++ {
		h.create(i * 10)
		if r := recv(t, "RecordSnapshot", h.records); r.index != i*10 {
			t.Fatalf("RecordSnapshot for %d, want %d", r.index, i*10)
		}
		if i > 3 {
			want = append(want, snapFileName(1, i*10))
		}
	}
	waitFor(t, "purge to five .snap files", func() bool { return slices.Equal(listSnapFiles(h.snapDir), want) })
	waitFor(t, "compaction behind 80", func() bool { return h.firstIndex() == 80-catchUp+1 })
	if got := namesIn(h.walDir, walSuffix); len(got) != 5 || got[0] != walFileName(2, 20) {
		t.Fatalf("WAL files after purge = %v, want the newest five", got)
	}
}

func TestSnapshotterSkipsOutOfDateSnapshot(t *testing.T) {
	h := startSnapshotter(t, 5, 0, 0, nil)
	// A newer snapshot from the leader replaced the log meanwhile.
	if err := h.storage.ApplySnapshot(leaderSnapshot(50, 1)); err != nil {
		t.Fatal(err)
	}
	h.create(30)
	h.barrier(t)
	noValue(t, "RecordSnapshot for an out-of-date snapshot", h.records)
	noValue(t, "Fatal for an out-of-date snapshot", h.fatals)
	if files := listSnapFiles(h.snapDir); len(files) != 0 {
		t.Fatalf("out-of-date snapshot written: %v", files)
	}
}

func TestSnapshotterRecordFailureIsFatal(t *testing.T) {
	boom := errors.New("fsync failed")
	h := startSnapshotter(t, 5, 0, 0, boom)
	h.create(30)
	recv(t, "RecordSnapshot", h.records)
	f := recv(t, "Fatal", h.fatals)
	if f.Component != "snapshotter" || !errors.Is(f, boom) {
		t.Fatalf("Fatal = %v, want component snapshotter wrapping %v", f, boom)
	}
	h.create(40)
	h.barrier(t)
	if first := h.firstIndex(); first != 1 {
		t.Fatalf("log compacted to %d though the WAL record failed", first)
	}
	noValue(t, "snapshot taken after a fatal error", h.records)
	noValue(t, "second Fatal", h.fatals)
}

func TestSnapshotterSavesReceivedSnapshotFile(t *testing.T) {
	h := startSnapshotter(t, 5, 0, 0, nil)
	want := leaderSnapshot(200, 3)
	res, err := h.sys.Root.RequestFuture(h.pid, messages.SaveSnapshotFile{Snapshot: want}, waitTimeout).Result()
	if err != nil {
		t.Fatal(err)
	}
	if saved, ok := res.(messages.SnapshotFileSaved); !ok || saved.Err != nil {
		t.Fatalf("answer = %#v, want SnapshotFileSaved without error", res)
	}
	got, err := snap.Read(zap.NewNop(), filepath.Join(h.snapDir, snapFileName(3, 200)))
	if err != nil {
		t.Fatalf("read the saved file: %v", err)
	}
	if !sameSnapshot(got, want) {
		t.Fatalf("saved %v, want %v", got, want)
	}
	noValue(t, "RecordSnapshot for a received snapshot (the wal actor records those)", h.records)
}

// The log kept behind a snapshot is bounded by count and by bytes, so that
// large values cannot keep gigabytes of log in memory.
func TestCompactionPointBoundsTheTail(t *testing.T) {
	ms := raft.NewMemoryStorage()
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 100; i++ {
		ents = append(ents, ent(i, 1, strings.Repeat("x", 10))) // 10 bytes each
	}
	if err := ms.Append(ents); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		index, entries uint64
		bytes          uint64
		want           uint64
	}{
		{"by count", 100, 20, 1000, 80},
		{"by bytes", 100, 50, 100, 90},
		{"bytes exactly at the bound", 100, 50, 200, 80},
		{"nothing to drop", 30, 50, 1000, 0},
		{"bytes alone drop some", 30, 50, 50, 25},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &snapshotterActor{cfg: SnapshotterConfig{Storage: ms, CatchUpEntries: c.entries, CatchUpBytes: c.bytes}}
			if got := a.compactionPoint(c.index); got != c.want {
				t.Fatalf("compactionPoint(%d) = %d, want %d", c.index, got, c.want)
			}
		})
	}
}

// LoadSnapshot is answered to its sender, with the data of the .snap file
// the snapshotter wrote or with the error reading it.
func TestSnapshotterAnswersLoadSnapshot(t *testing.T) {
	h := startSnapshotter(t, 5, 0, 0, nil)
	h.create(20)
	recv(t, "RecordSnapshot 20", h.records)

	tests := []struct {
		name        string
		index, term uint64
		wantData    string // empty: an error is wanted
	}{
		{"written file", 20, 1, "state@20"},
		{"no such file", 30, 1, ""},
		{"other term", 20, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := h.sys.Root.RequestFuture(h.pid, messages.LoadSnapshot{Index: tc.index, Term: tc.term}, waitTimeout).Result()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := res.(messages.SnapshotLoaded)
			if !ok || got.Index != tc.index {
				t.Fatalf("answer = %#v, want SnapshotLoaded for index %d", res, tc.index)
			}
			if tc.wantData == "" {
				if got.Err == nil || got.Snapshot != nil {
					t.Fatalf("answer = %#v, want an error and no snapshot", got)
				}
				return
			}
			if got.Err != nil || string(got.Snapshot.GetData()) != tc.wantData || got.Snapshot.GetMetadata().GetIndex() != tc.index {
				t.Fatalf("answer = %v, %v; want the snapshot at %d with data %q", got.Snapshot, got.Err, tc.index, tc.wantData)
			}
		})
	}
	noValue(t, "Fatal for a failed read", h.fatals)
}
