package kv

import (
	"errors"
	"maps"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// raftexampleCodec is the raftexample format's codec.
func raftexampleCodec(t testing.TB) apply.Codec {
	t.Helper()
	codec, err := apply.FormatRaftexample.Codec()
	if err != nil {
		t.Fatal(err)
	}
	return codec
}

// mustEncode is c's entry data in format f.
func mustEncode(t testing.TB, f apply.Format, c apply.Command) []byte {
	t.Helper()
	codec, err := f.Codec()
	if err != nil {
		t.Fatal(err)
	}
	data, err := codec.Encode(c)
	if err != nil {
		t.Fatalf("encode a command of op %d (key of %d bytes): %v", c.Op, len(c.Key), err)
	}
	return data
}

func raftexampleFixture(t *testing.T, cfg func(*Config)) *fixture {
	t.Helper()
	return newFixture(t, fixtureOpts{cfg: func(c *Config) {
		c.Format = apply.FormatRaftexample
		if cfg != nil {
			cfg(c)
		}
	}})
}

// gobEntry is an entry as a raftexample member proposes it: no request id.
func gobEntry(t *testing.T, idx uint64, key, value string) *raftpb.Entry {
	t.Helper()
	return normalEntry(idx, kvtest.RaftexamplePropose(t, key, value))
}

func jsonSnapshot(data string, idx uint64, cs *raftpb.ConfState) *raftpb.Snapshot {
	return &raftpb.Snapshot{
		Data:     []byte(data),
		Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(uint64(1)), ConfState: cs},
	}
}

// A PUT is proposed as a gob entry carrying its request id, and only the
// entry with that id answers it: neither raftexample's id-less entry nor
// another member's entry with the same key and value does.
func TestRaftexampleActorPutSettledByItsID(t *testing.T) {
	f := raftexampleFixture(t, nil)
	w := f.request(messages.Put{Key: "/k", Value: []byte("v")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	got, err := kvtest.RaftexampleReadCommit(p.Data)
	if err != nil || got.Key != "/k" || got.Val != "v" {
		t.Fatalf("raftexample reads the proposal as %+v, %v; want /k=v", got, err)
	}
	if c, err := raftexampleCodec(t).Decode(p.Data); err != nil || c.ReqID != p.ID || p.ID == 0 {
		t.Fatalf("proposal decodes as %+v, %v; want request id %d", c, err, p.ID)
	}
	w.pending(t)

	f.wantDelivery(t, f.apply(gobEntry(t, 1, "/k", "v")))
	w.pending(t)
	f.get(t, "/k", str("v"), 1)

	other := mustEncode(t, apply.FormatRaftexample, apply.Command{Op: apply.OpPut, ReqID: p.ID + 1, Key: "/k", Value: []byte("v")})
	f.wantDelivery(t, f.apply(normalEntry(2, other), gobEntry(t, 3, "/k", "v2"), normalEntry(4, nil)))
	w.pending(t)
	f.get(t, "/k", str("v2"), 4)

	resps := f.apply(normalEntry(5, p.Data))
	if r := w.result(t); r.Err != nil || r.Index != 5 {
		t.Fatalf("answer = %+v, want success at index 5", r)
	}
	if d := f.wantDelivery(t, resps); d.data["/k"] != "v" {
		t.Fatalf("state when Deliver was called: %q, want /k=v", d.data)
	}
	f.get(t, "/k", str("v"), 5)
	f.raftQuiet(t)
	f.noFatal(t)
}

// What a format cannot express is refused before anything is proposed; the
// same requests pass in the native format.
func TestActorFormatRefusals(t *testing.T) {
	cases := []struct {
		name   string
		format apply.Format
		req    any
		want   error // nil: proposed
	}{
		{"delete", apply.FormatRaftexample, messages.Delete{Key: "/k"}, messages.ErrUnsupported},
		{"compact", apply.FormatRaftexample, messages.Compact{Revision: 1}, messages.ErrUnsupported},
		{"nested transaction", apply.FormatRaftexample, messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Txn: &messages.Txn{}}}}, messages.ErrUnsupported},
		{"key not utf-8", apply.FormatRaftexample, messages.Put{Key: "/\xff", Value: []byte("v")}, apply.ErrInvalidUTF8},
		{"value not utf-8", apply.FormatRaftexample, messages.Put{Key: "/k", Value: []byte("\xfe")}, apply.ErrInvalidUTF8},
		{"valid put", apply.FormatRaftexample, messages.Put{Key: "/k", Value: []byte("é")}, nil},
		{"native delete", apply.FormatNative, messages.Delete{Key: "/k"}, nil},
		{"native compact", apply.FormatNative, messages.Compact{Revision: 1}, nil},
		{"native binary key and value", apply.FormatNative, messages.Put{Key: "/\xff", Value: []byte("\xfe")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{cfg: func(cfg *Config) { cfg.Format = c.format }})
			w := f.request(c.req)
			if c.want == nil {
				recv[messages.Propose](t, f.raft.got, "Propose")
				w.pending(t)
				return
			}
			w.wantErr(t, c.want)
			f.raftQuiet(t)
			f.noDelivery(t)
		})
	}
}

// A snapshot from a raftexample leader replaces the data; its members are the
// ConfState's ids, with the peer URLs this member knew; conf changes go on
// updating them; later snapshots are raftexample's JSON.
func TestRaftexampleActorRestore(t *testing.T) {
	f := raftexampleFixture(t, func(c *Config) { c.SnapshotCount = 3 })
	f.wantDelivery(t, f.apply(confChangeEntry(t, 1, addNode(1, "http://a:2380", 0)), gobEntry(t, 2, "/old", "x")))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	read := f.request(messages.Get{Key: "/x"})
	ri := recv[messages.ReadIndex](t, f.raft.got, "ReadIndex")
	f.system.Root.Send(f.pid, messages.ReadIndexReady{IDs: []uint64{ri.ID}, Index: 10})
	read.pending(t)

	cs := &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{3}, VotersOutgoing: []uint64{1, 4}, LearnersNext: []uint64{5}}
	f.system.Root.Send(f.pid, messages.RestoreSnapshot{Snapshot: jsonSnapshot(`{"/x":"1","/y":"\u003c"}`, 10, cs)})
	members := map[uint64]string{1: "http://a:2380", 2: "", 3: "", 4: "", 5: ""}
	if mr := recv[messages.MembersRestored](t, f.raft.got, "MembersRestored"); !maps.Equal(mr.Members, members) {
		t.Fatalf("MembersRestored %v, want %v", mr.Members, members)
	}
	if r := read.result(t); r.Err != nil || string(r.Value) != "1" || r.Index != 10 {
		t.Fatalf("read waiting for 10: %+v, want /x=1 at 10", r)
	}
	f.get(t, "/y", str("<"), 10)
	f.get(t, "/old", nil, 10)
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), members) {
		t.Fatalf("members %v, want %v", r.Members, members)
	}

	f.wantDelivery(t, f.apply(confChangeEntry(t, 11, &raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: new(uint64(4))})))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	f.wantDelivery(t, f.apply(confChangeEntry(t, 12, addNode(2, "http://b:2380", 0))))
	recv[messages.ApplyConfChange](t, f.raft.got, "ApplyConfChange")
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), map[uint64]string{1: "http://a:2380", 2: "http://b:2380", 3: "", 5: ""}) {
		t.Fatalf("members after conf changes %v", r.Members)
	}
	f.snapQuiet(t)
	f.wantDelivery(t, f.apply(gobEntry(t, 13, "/a", "&")))
	f.wantSnapSent(t, 13)
	snap := recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot")
	if want := `{"/a":"\u0026","/x":"1","/y":"\u003c"}`; string(snap.Data) != want || snap.Index != 13 {
		t.Fatalf("snapshot at %d = %s, want %s at 13", snap.Index, snap.Data, want)
	}
	// The raft probe's ConfState after the conf changes it applied.
	if want := confState([]uint64{1, 2}, nil); !proto.Equal(snap.ConfState, want) {
		t.Fatalf("snapshot ConfState %v, want %v", snap.ConfState, want)
	}
	f.noFatal(t)
}

// An actor over a State made from a raftexample snapshot (OpenState's
// migration) knows no peer URL yet, and its snapshots are raftexample's JSON.
func TestRaftexampleNewActorFromSnapshot(t *testing.T) {
	cs := confState([]uint64{1, 2}, []uint64{3})
	f := newFixture(t, fixtureOpts{
		snapshot: jsonSnapshot(`{"/a":"1"}`, 7, cs),
		cfg: func(c *Config) {
			c.Format = apply.FormatRaftexample
			c.SnapshotCount = 1
		},
	})
	members := map[uint64]string{1: "", 2: "", 3: ""}
	if r := f.sync(t); !maps.Equal(peerURLs(r.Members), members) || r.Index != 7 {
		t.Fatalf("members %v at %d, want %v at 7", r.Members, r.Index, members)
	}
	f.get(t, "/a", str("1"), 7)
	f.wantDelivery(t, f.apply(gobEntry(t, 7, "/a", "stale"), gobEntry(t, 8, "/b", "2")))
	f.wantSnapSent(t, 8)
	snap := recv[messages.CreateSnapshot](t, f.snap.got, "CreateSnapshot")
	if want := `{"/a":"1","/b":"2"}`; string(snap.Data) != want || snap.Index != 8 || !proto.Equal(snap.ConfState, cs) {
		t.Fatalf("snapshot at %d: %s with %v, want %s with %v at 8", snap.Index, snap.Data, snap.ConfState, want, cs)
	}
}

// An entry of another format is refused when applied, as any entry the
// format cannot read: every member of a raftexample cluster refuses it alike.
func TestRaftexampleActorRefusesANativeEntry(t *testing.T) {
	f := raftexampleFixture(t, nil)
	f.wantDelivery(t, f.apply(gobEntry(t, 1, "/a", "1")))
	f.wantDelivery(t, f.apply(putEntry(2, "k", "v"), gobEntry(t, 3, "/b", "2")))
	f.noFatal(t)
	f.get(t, "k", nil, 3)
	f.get(t, "/b", str("2"), 3)
}

// A snapshot the format cannot read stops the state machine: it would
// replace the whole state, and a member cannot go on without it.
func TestRaftexampleActorFatal(t *testing.T) {
	cases := []struct {
		name string
		msg  any
		want error
	}{
		{"native snapshot", messages.RestoreSnapshot{Snapshot: testState{data: map[string]string{"k": "v"}}.snapshot(t, 5, nil)}, store.ErrBadSnapshot},
		{"bad JSON snapshot", messages.RestoreSnapshot{Snapshot: jsonSnapshot(`{"k":2}`, 5, nil)}, store.ErrBadSnapshot},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := raftexampleFixture(t, nil)
			f.wantDelivery(t, f.apply(gobEntry(t, 1, "/a", "1")))
			f.system.Root.Send(f.pid, c.msg)
			if fatal := f.wantFatal(t); !errors.Is(fatal, c.want) {
				t.Fatalf("Fatal(%v), want it to wrap %v", fatal, c.want)
			}
			f.noDelivery(t)
			f.request(messages.Get{Key: "/a", Serializable: true}).wantErr(t, messages.ErrStopped)
		})
	}
}
