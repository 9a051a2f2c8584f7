package kv

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/internal/actortest"
	"github.com/raftkv/node/internal/testutil"
	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/backend"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// (f) A native snapshot from the leader comes with the leader's db, which
// the transport saved at Config.SnapshotDB(index) before raft handed over
// the snapshot (metadata only). The db replaces the state; its applied index
// may be past the snapshot's, and the entries between, which raft delivers
// again, are not written twice: their conf changes still reach raft, and
// their clients are answered.
func TestActorRestoresSnapshotDB(t *testing.T) {
	const url5 = "http://e:2380"
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.SnapshotCount = 4 }})
	f.wantDelivery(t, f.apply(putEntry(1, "old", "1"), confChangeEntry(t, 2, addNode(1, "http://a:2380", 0))))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")

	// Clients whose entries (11 and 12) the leader's db holds already.
	add := f.request(messages.AddMember{ID: 5, PeerURL: url5})
	pcc := recv[messages.ProposeConfChange](t, f.raft.got, "ProposeConfChange")
	put := f.request(messages.Put{Key: "w", Value: []byte("x")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	read := f.request(messages.Get{Key: "w"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 12})
	read.pending(t)

	// The leader's db, at 12: it applied the snapshot's 10 and two more.
	members := map[uint64]string{1: "http://a:2380", 2: "http://b:2380", 5: url5}
	leader := testState{members: members, removed: []uint64{3}, data: map[string]string{"x": "1", "y": "2", "w": "x"}}
	leaderCS := confState([]uint64{1, 2, 5}, nil)
	src := openTestState(t, apply.FormatNative)
	leader.write(t, src, 12, leaderCS)
	path := f.stateCfg.SnapshotDB(10)
	if held := streamDB(t, src, path, 10); held != 12 {
		t.Fatalf("the leader's stream holds %d, want 12", held)
	}

	f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: dbSnapshot(10, confState([]uint64{1, 2}, nil))})
	mr := recv[messages.MembersRestored](t, f.raft.got, "MembersRestored")
	if !maps.Equal(mr.Members, members) || !slices.Equal(mr.Removed, []uint64{3}) {
		t.Fatalf("MembersRestored %v removed %v, want %v removed [3]", mr.Members, mr.Removed, members)
	}
	// The state is the db's, at its own index, not the snapshot's.
	if r := read.result(t); r.Err != nil || string(r.Value) != "x" || r.Index != 12 {
		t.Fatalf("read waiting for 12: %+v, want w=x at 12", r)
	}
	checkState(t, "after the restore", f.view(t), leader)
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), members) || r.Index != 12 {
		t.Fatalf("members %v at %d, want %v at 12", r.Members, r.Index, members)
	}
	if db := f.db(t); db.applied != 12 || db.committed != 12 {
		t.Fatalf("db after the restore: %+v, want applied and committed at 12", db)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the received db is still at %s after its install (%v)", path, err)
	}

	// raft delivers the entries after its snapshot at 10.
	resps := f.apply(
		putEntry(9, "x", "stale"), putEntry(10, "y", "stale"),
		confChangeEntry(t, 11, addNode(5, url5, pcc.ID)),
		normalEntry(12, p.Data),
		putEntry(13, "z", "3"),
	)
	acc := recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange of the entry the db holds")
	if cc, ok := acc.Change.AsV1(); acc.Index != 11 || acc.PeerURL != url5 || !ok || cc.GetNodeId() != 5 {
		t.Fatalf("ApplyConfChange %+v, want index 11, AddNode 5 at %s", acc, url5)
	}
	d := f.wantDelivery(t, resps)
	if d.applied != 13 || !slices.Contains(d.confChanges, 11) {
		t.Fatalf("Deliver at %d with conf changes %v answered, want 13 with 11", d.applied, d.confChanges)
	}
	if r := add.result(t); r.Err != nil {
		t.Fatalf("AddMember whose entry the db holds: %+v, want success", r)
	}
	if r := put.result(t); r.Err != nil {
		t.Fatalf("Put whose entry the db holds: %+v, want success", r)
	}
	want := testState{members: members, removed: []uint64{3}, data: map[string]string{"x": "1", "y": "2", "w": "x", "z": "3"}}
	checkState(t, "after the entries", f.view(t), want)
	// The replayed entries wrote nothing: w is still the leader's record,
	// and the ConfState is the db's, as of 12 (the raft probe's, built
	// from the changes it saw, differs).
	var rec messages.KV
	var cs *raftpb.ConfState
	var err error
	f.inspect(t, func(a *Actor) {
		rec, _, err = a.st.Get("w")
		cs = proto.Clone(a.confState).(*raftpb.ConfState)
	})
	if err != nil || rec.ModRevision != 12 || rec.Version != 1 {
		t.Fatalf("w's record %+v (%v), want the leader's: written at 12, version 1", rec, err)
	}
	if !proto.Equal(cs, leaderCS) {
		t.Fatalf("ConfState %v after the replay, want the db's %v", cs, leaderCS)
	}

	// The restore counts as a snapshot at 12: the next is due at 16.
	f.snapQuiet(t)
	f.wantDelivery(t, f.apply(putEntry(14, "a", "1"), putEntry(15, "b", "2"), putEntry(16, "c", "3")))
	want.data["a"], want.data["b"], want.data["c"] = "1", "2", "3"
	f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 16, leaderCS, want)
	f.noFatal(t)
}

// (quota) A put that would take the data past Config.Quota is answered
// ErrNoSpace and writes nothing; a delete always passes and makes room, and
// a put fits again after it. Within a batch each write is judged alone.
func TestActorQuota(t *testing.T) {
	big := strings.Repeat("v", 60)
	quota := store.Cost("a", []byte(big)) + store.Cost("b", []byte("1"))
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.Quota = quota }})

	steps := []struct {
		name    string
		req     any
		wantErr error
		want    map[string]string // the data after
	}{
		{"put that fits", messages.Put{Key: "a", Value: []byte(big)}, nil, map[string]string{"a": big}},
		{"put up to the quota", messages.Put{Key: "b", Value: []byte("1")}, nil, map[string]string{"a": big, "b": "1"}},
		{"new key past the quota", messages.Put{Key: "c", Value: nil}, apply.ErrNoSpace, map[string]string{"a": big, "b": "1"}},
		{"value grown past the quota", messages.Put{Key: "b", Value: []byte("12")}, apply.ErrNoSpace, map[string]string{"a": big, "b": "1"}},
		{"delete", messages.Delete{Key: "a"}, nil, map[string]string{"b": "1"}},
		{"put after room was made", messages.Put{Key: "c", Value: []byte(big)}, nil, map[string]string{"b": "1", "c": big}},
	}
	var log []*raftpb.Entry // the entries applied, for the second member below
	for i, s := range steps {
		idx := uint64(i + 1)
		w := f.request(s.req)
		p := recv[messages.Propose](t, f.raft.got, "Propose of "+s.name)
		e := normalEntry(idx, p.Data)
		log = append(log, e)
		d := f.wantDelivery(t, f.apply(e))
		r := w.result(t)
		if !errors.Is(r.Err, s.wantErr) || r.Index != idx {
			t.Fatalf("%s: answered %+v, want err %v at %d", s.name, r, s.wantErr, idx)
		}
		if !maps.Equal(d.data, s.want) {
			t.Fatalf("%s: data %q, want %q", s.name, d.data, s.want)
		}
	}

	// A batch: one write past the quota among writes that fit.
	batch := apply.EncodeBatch(99, [][]byte{
		encodeNative(apply.Command{Op: apply.OpPut, Key: "d", Value: []byte(big)}), // past the quota
		encodeNative(apply.Command{Op: apply.OpDelete, Key: "c"}),
		encodeNative(apply.Command{Op: apply.OpPut, Key: "e", Value: []byte("5")}),
	}, 0)
	log = append(log, normalEntry(uint64(len(steps)+1), batch))
	if d := f.wantDelivery(t, f.apply(log[len(log)-1])); !maps.Equal(d.data, map[string]string{"b": "1", "e": "5"}) {
		t.Fatalf("after the batch: %q, want b and e", d.data)
	}
	f.noFatal(t)

	// Whether a write fits depends on the log alone: a member that applies
	// the same entries with no client waiting ends with the same state, and
	// one without a quota does not.
	other := newFixture(t, fixtureOpts{cfg: func(c *Config) { c.Quota = quota }})
	unbounded := newFixture(t, fixtureOpts{})
	for _, g := range []*fixture{other, unbounded} {
		g.wantDelivery(t, g.apply(log...))
	}
	want, got, without := f.digest(t), other.digest(t), unbounded.digest(t)
	if got != want {
		t.Fatalf("digest of the same log under the same quota: %+v, want %+v", got, want)
	}
	if want.Keys != 2 || want.Index != uint64(len(log)) {
		t.Fatalf("digest %+v, want 2 keys at %d", want, len(log))
	}
	if without.Sum == want.Sum {
		t.Fatal("the digest without a quota is the same: the quota refused nothing")
	}
}

// (batching) The db is not committed at every entry: what is applied waits
// in the open transaction until the commit tick (backend.BatchInterval
// after the first entry) or until backend.BatchLimit entries are pending.
func TestActorBatchesCommits(t *testing.T) {
	t.Run("tick", func(t *testing.T) {
		f := newFixture(t, fixtureOpts{})
		d := f.wantDelivery(t, f.apply(putEntry(1, "a", "1"), putEntry(2, "b", "2")))
		if d.pending != 2 || d.committed != 0 {
			t.Fatalf("after an apply: %d pending, committed at %d; want 2 pending, nothing committed", d.pending, d.committed)
		}
		// Reads see what was applied, committed or not.
		f.get(t, "b", str("2"), 2)
		// The tick the apply armed commits it; it comes on a timer, so poll
		// for it with a deadline.
		testutil.Eventually(t, waitFor, "the commit the apply's tick makes", func() error {
			if db := f.db(t); db.pending != 0 || db.committed != 2 {
				return fmt.Errorf("not committed yet: %+v", db)
			}
			return nil
		})
	})
	t.Run("entries", func(t *testing.T) {
		// Both applies queue before either runs, so that the tick the first
		// arms cannot come between them.
		g := &actortest.Gate{}
		f := newFixture(t, fixtureOpts{props: []actor.PropsOption{actor.WithDispatcher(g)}})
		f.sync(t)
		g.Close()
		const limit = backend.BatchLimit
		entries := make([]*raftpb.Entry, limit)
		for i := range entries {
			entries[i] = putEntry(uint64(i+1), "k"+strconv.Itoa(i%100), "v")
		}
		first := f.apply(entries[:limit-1]...)
		second := f.apply(entries[limit-1])
		g.Open()
		if d := f.wantDelivery(t, first); d.pending != limit-1 || d.committed != 0 {
			t.Fatalf("after %d entries: %d pending, committed at %d; want all pending", limit-1, d.pending, d.committed)
		}
		if d := f.wantDelivery(t, second); d.pending != 0 || d.committed != limit {
			t.Fatalf("after %d entries: %d pending, committed at %d; want none pending, committed at %d",
				limit, d.pending, d.committed, limit)
		}
	})
}

// (restart) What the actor applied is in the db once it stopped and the
// State closed: opened again, the State holds the applied index and term,
// the ConfState, the data and the members, and a new actor goes on from
// there without applying an entry twice.
func TestActorRestart(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	// No commit tick from here on (the actor arms none while one is set,
	// and stops it on stop): what the db holds after the stop is the
	// stop's commit.
	f.inspect(t, func(a *Actor) { a.commitTimer = time.AfterFunc(time.Hour, func() {}) })
	d := f.wantDelivery(t, f.apply(
		confChangeEntry(t, 1, addNode(1, "http://a:2380", 0)),
		confChangeEntry(t, 2, addNode(2, "http://b:2380", 0)),
		putEntry(3, "a", "1"), putEntry(4, "b", "2"),
		normalEntry(5, encodeNative(apply.ProposeAttrs(2, []string{"http://b:2379"}))),
		normalEntry(6, encodeNative(apply.Command{Op: apply.OpDelete, Key: "a"})),
		confChangeEntry(t, 7, &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(1))}),
		&raftpb.Entry{Term: new(uint64(2)), Index: new(uint64(8)), Type: raftpb.EntryNormal.Enum()}, // a new leader's empty entry
	))
	for range 3 {
		recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	}
	want := testState{members: map[uint64]string{2: "http://b:2380"}, removed: []uint64{1}, data: map[string]string{"b": "2"}}
	wantCS := confState([]uint64{2}, nil)
	// Each conf change commits at once (rebuild.go): the last, 7, leaves 8.
	if d.pending != 1 || d.committed != 7 {
		t.Fatalf("after the apply: %d pending, committed at %d; want 1 pending, committed at 7", d.pending, d.committed)
	}
	f.stop(t)
	if m, err := dbMetaOf(f.state.st); err != nil || m.applied != 8 {
		t.Fatalf("the stopped actor left the db committed at %d (%v), want 8", m.applied, err)
	}
	f.shutdown(t)

	st, err := OpenState(testStateConfig(f.dir, apply.FormatNative, nil))
	if err != nil {
		t.Fatalf("OpenState after the restart: %v", err)
	}
	if idx, term := st.Applied(); idx != 8 || term != 2 {
		t.Errorf("applied %d term %d after the restart, want 8 and 2", idx, term)
	}
	if !proto.Equal(st.ConfState(), wantCS) {
		t.Errorf("ConfState %v after the restart, want %v", st.ConfState(), wantCS)
	}
	if !maps.Equal(st.Members(), want.members) || !slices.Equal(st.Removed(), want.removed) {
		t.Errorf("members %v removed %v after the restart, want %v removed %v", st.Members(), st.Removed(), want.members, want.removed)
	}
	if !slices.Equal(st.st.Clients(2), []string{"http://b:2379"}) {
		t.Errorf("client URLs %q after the restart", st.st.Clients(2))
	}
	v, err := viewOf(st.st)
	if err != nil {
		t.Fatal(err)
	}
	checkState(t, "after the restart", v, want)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// A new actor over the same dir: raft delivers from its applied index
	// on (here one entry it holds already, as after a crash between a
	// commit and raft learning of it).
	g := newFixture(t, fixtureOpts{dir: f.dir})
	if r := g.sync(t); r.Index != 8 || !maps.Equal(peerURLs(r.Members), want.members) {
		t.Fatalf("the new actor starts at %d with %v, want 8 with %v", r.Index, r.Members, want.members)
	}
	g.wantDelivery(t, g.apply(putEntry(8, "b", "stale"), putEntry(9, "c", "3")))
	want.data["c"] = "3"
	checkState(t, "after the restart and an apply", g.view(t), want)
}

// A snapshot falls due every SnapshotCount entries, or sooner once the
// entries applied since the last one hold SnapshotBytes of data, so that
// large values do not pile up log.
func TestActorSnapshotBytes(t *testing.T) {
	f := newFixture(t, fixtureOpts{cfg: func(c *Config) {
		c.SnapshotCount = 1000
		c.SnapshotBytes = 100
	}})
	value := strings.Repeat("v", 60)
	e := func(idx uint64) *raftpb.Entry { return putEntry(idx, "k", value) }
	if n := len(e(1).GetData()); n >= 100 || 2*n < 100 {
		t.Fatalf("an entry of %d bytes: the test needs two of them, not one, to reach 100", n)
	}
	f.wantDelivery(t, f.apply(e(1)))
	f.snapQuiet(t)
	f.wantDelivery(t, f.apply(e(2)))
	f.checkSnapshot(t, recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"), 2, &raftpb.ConfState{},
		testState{data: map[string]string{"k": value}})
	// The count of bytes starts again at the snapshot.
	f.wantDelivery(t, f.apply(e(3)))
	f.snapQuiet(t)
	f.wantDelivery(t, f.apply(e(4)))
	f.wantSnapSent(t, 4)
	if s := recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot"); s.Index != 4 {
		t.Fatalf("snapshot at %d, want 4", s.Index)
	}
}
