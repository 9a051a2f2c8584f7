package persistence

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
)

// TestActorsOnRealFilesSurviveRestart drives both actors over a real WAL and
// snapshot directory the way a node does (appends, a local snapshot, a
// snapshot from the leader, more appends), then replays the directory.
func TestActorsOnRealFilesSurviveRestart(t *testing.T) {
	dataDir := t.TempDir()
	r := openT(t, nil, dataDir, testMeta)
	sys := newSystem(t)
	fatals := make(chan messages.Fatal, 4)
	fatal := func(f messages.Fatal) { fatals <- f }
	deliveries := make(chan []*raftpb.Message, 64)
	restores := make(chan *raftpb.Snapshot, 4)

	kv := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(messages.RestoreSnapshot); ok {
			restores <- m.Snapshot
		}
	}))
	// The two actors name each other, so the wal actor's PID is fixed first.
	walPID := sys.NewLocalPID("wal")
	const catchUp = 5
	snapPID, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return NewSnapshotterActor(SnapshotterConfig{
			SnapDir: SnapDir(dataDir), WALDir: WALDir(dataDir),
			Storage: r.Storage, WAL: walPID, CatchUpEntries: catchUp, Fatal: fatal,
		})
	}), "snapshotter")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return NewWALActor(WALConfig{
			Log: r.WAL, Storage: r.Storage, Snapshotter: snapPID, KV: kv,
			Deliver: func(msgs []*raftpb.Message) { deliveries <- msgs },
			Fatal:   fatal,
		})
	}), "wal"); err != nil {
		t.Fatal(err)
	}

	for i := range uint64(4) {
		sys.Root.Send(walPID, appendMsg(newHS(1, 1, 5*i+5), entRange(5*i+1, 5*i+5, 1), i))
	}
	// Appends may share a Save and so a delivery; count the responses.
	for n := 0; n < 4; {
		n += len(recv(t, "append responses", deliveries))
	}
	sys.Root.Send(snapPID, messages.CreateSnapshot{Index: 15, ConfState: &raftpb.ConfState{Voters: []uint64{1}}, Data: []byte("kv@15")})
	waitFor(t, "compaction behind the local snapshot", func() bool {
		first, _ := r.Storage.FirstIndex()
		return first == 15-catchUp+1
	})

	fromLeader := leaderSnapshot(40, 2)
	m := appendMsg(newHS(2, 0, 40), nil, 10)
	m.Snapshot = fromLeader
	sys.Root.Send(walPID, m)
	if got := recv(t, "restore", restores); got.GetMetadata().GetIndex() != 40 {
		t.Fatalf("kv restored index %d, want 40", got.GetMetadata().GetIndex())
	}
	recv(t, "snapshot append responses", deliveries)
	sys.Root.Send(walPID, appendMsg(newHS(2, 0, 42), entRange(41, 42, 2), 11))
	recv(t, "last append responses", deliveries)

	stop(t, sys, walPID)
	stop(t, sys, snapPID)
	noValue(t, "Fatal", fatals)

	got := openT(t, nil, dataDir, testMeta)
	defer closeWAL(t, got)
	if got.Snapshot == nil || !sameSnapshot(got.Snapshot, fromLeader) {
		t.Fatalf("replayed snapshot %v, want the leader's at 40", got.Snapshot)
	}
	if describeHS(got.HardState) != "2/0/42" {
		t.Errorf("replayed hard state %s, want 2/0/42", describeHS(got.HardState))
	}
	sameEntries(t, storedEntries(t, got.Storage), entRange(41, 42, 2))
	if files := listSnapFiles(SnapDir(dataDir)); len(files) != 2 {
		t.Errorf("snap files %v, want the local one at 15 and the leader's at 40", files)
	}
}
