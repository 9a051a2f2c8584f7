package apply

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/internal/legacysnap"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

func TestParseFormat(t *testing.T) {
	cases := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"native", FormatNative, false},
		{"raftexample", FormatRaftexample, false},
		{"", 0, true},
		{"Native", 0, true},
		{"raftexample ", 0, true},
		{"json", 0, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseFormat(c.in)
			if c.wantErr {
				if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "native or raftexample") {
					t.Fatalf("ParseFormat(%q) = %v, %v; want an error wrapping ErrUnknownFormat that names the choices", c.in, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseFormat(%q) = %v, %v; want %v", c.in, got, err, c.want)
			}
			if got.String() != c.in {
				t.Fatalf("%v.String() = %q, want %q", got, got.String(), c.in)
			}
		})
	}
}

func TestFormatZeroIsNative(t *testing.T) {
	var f Format
	if f != FormatNative || f.String() != "native" {
		t.Fatalf("zero Format = %v, want native", f)
	}
}

func TestUnknownFormat(t *testing.T) {
	for _, f := range []Format{2, -1, 99} {
		if _, err := f.Codec(); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Format(%d).Codec() error = %v, want ErrUnknownFormat", int(f), err)
		}
		if want := fmt.Sprintf("Format(%d)", int(f)); f.String() != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), f.String(), want)
		}
	}
}

func mustEncode(t testing.TB, sf Codec, c Command) []byte {
	t.Helper()
	data, err := sf.Encode(c)
	if err != nil {
		t.Fatalf("encode %+v: %v", brief(c), err)
	}
	return data
}

var raftexamplePuts = []struct {
	name string
	cmd  Command
}{
	{"with id", Command{Op: OpPut, ReqID: 7, Key: "/k", Value: []byte("v")}},
	{"largest id", Command{Op: OpPut, ReqID: 1<<64 - 1, Key: "/k", Value: []byte("v")}},
	{"without id", Command{Op: OpPut, Key: "/k", Value: []byte("v")}},
	{"empty key and value", Command{Op: OpPut, ReqID: 3, Key: "", Value: []byte{}}},
	{"raw request uri", Command{Op: OpPut, ReqID: 4, Key: "/a%20b/c?x=1&y", Value: []byte("q")}},
	{"unicode", Command{Op: OpPut, ReqID: 5, Key: "/ключ", Value: []byte("значение \u2028 \x00")}},
	{"large value", Command{Op: OpPut, ReqID: 6, Key: "/big", Value: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}},
}

func TestRaftexampleEntryRoundTrip(t *testing.T) {
	for _, c := range raftexamplePuts {
		t.Run(c.name, func(t *testing.T) {
			data := mustEncode(t, raftexampleFormat{}, c.cmd)
			got, err := raftexampleFormat{}.Decode(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Op != OpPut || got.ReqID != c.cmd.ReqID || got.Key != c.cmd.Key || !bytes.Equal(got.Value, c.cmd.Value) {
				t.Fatalf("decoded %+v, want %+v", brief(got), brief(c.cmd))
			}
		})
	}
}

// Our entries are what raftexample reads as its own, and its entries are
// what we read as ours without a request id.
func TestRaftexampleGobInterop(t *testing.T) {
	for _, c := range raftexamplePuts {
		t.Run("ours read by raftexample/"+c.name, func(t *testing.T) {
			got, err := kvtest.RaftexampleReadCommit(mustEncode(t, raftexampleFormat{}, c.cmd))
			if err != nil {
				t.Fatalf("raftexample cannot decode our entry: %v", err)
			}
			if got.Key != c.cmd.Key || got.Val != string(c.cmd.Value) {
				t.Fatalf("raftexample read %q=%.32q, want %q=%.32q", got.Key, got.Val, c.cmd.Key, c.cmd.Value)
			}
		})
		t.Run("raftexample's read by us/"+c.name, func(t *testing.T) {
			got, err := raftexampleFormat{}.Decode(kvtest.RaftexamplePropose(t, c.cmd.Key, string(c.cmd.Value)))
			if err != nil {
				t.Fatalf("decode raftexample's entry: %v", err)
			}
			if got.Op != OpPut || got.ReqID != 0 || got.Key != c.cmd.Key || !bytes.Equal(got.Value, c.cmd.Value) {
				t.Fatalf("decoded %+v, want a put of %q without request id", brief(got), c.cmd.Key)
			}
		})
	}
}

func TestRaftexampleEncodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		cmd  Command
		want error
	}{
		{"delete", Command{Op: OpDelete, ReqID: 1, Key: "/k"}, messages.ErrUnsupported},
		{"delete of an invalid key", Command{Op: OpDelete, ReqID: 1, Key: "\xff"}, messages.ErrUnsupported},
		{"key not utf-8", Command{Op: OpPut, ReqID: 1, Key: "/\xff", Value: []byte("v")}, ErrInvalidUTF8},
		{"value not utf-8", Command{Op: OpPut, ReqID: 1, Key: "/k", Value: []byte("ok \xc3")}, ErrInvalidUTF8},
		{"surrogate half in value", Command{Op: OpPut, ReqID: 1, Key: "/k", Value: []byte("\xed\xa0\x80")}, ErrInvalidUTF8},
		{"transaction", Command{Op: OpTxn, ReqID: 1, Value: encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("/k", "v")}})}, messages.ErrUnsupported},
		{"publication of client URLs", ProposeAttrs(1, []string{"http://a:2379"}), messages.ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := raftexampleFormat{}.Encode(c.cmd)
			if !errors.Is(err, c.want) || data != nil {
				t.Fatalf("encode = %q, %v; want no data and an error wrapping %v", data, err, c.want)
			}
		})
	}
}

func TestRaftexampleDecodeMalformed(t *testing.T) {
	gobOf := func(v any) []byte {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(v); err != nil {
			t.Fatalf("gob: %v", err)
		}
		return buf.Bytes()
	}
	valid := mustEncode(t, raftexampleFormat{}, Command{Op: OpPut, ReqID: 9, Key: "/k", Value: []byte("v")})
	cases := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"garbage", []byte("garbage")},
		{"native command", Command{Op: OpPut, ReqID: 1, Key: "k", Value: []byte("v")}.encode()},
		{"an int", gobOf(42)},
		{"a string", gobOf("/k")},
		{"key of another type", gobOf(struct{ Key int }{1})},
		{"id of another type", gobOf(struct {
			Key string
			ID  string
		}{"/k", "x"})},
		{"no field in common", gobOf(struct{ Other string }{"x"})},
	}
	// A cut entry must never apply as a shorter one.
	for n := 0; n < len(valid); n++ {
		cases = append(cases, struct {
			name string
			data []byte
		}{fmt.Sprintf("first %d bytes", n), valid[:n]})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := raftexampleFormat{}.Decode(c.data)
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decode(%q) = %+v, %v; want an error wrapping ErrBadCommand", c.data, got, err)
			}
		})
	}
}

// storeContent is what a store holds as these tests write and compare it:
// the data, the member list and the removed ids.
type storeContent struct {
	data    map[string]string
	members map[uint64]string
	removed []uint64
}

// write puts w into st, which is empty, as the db of a member that applied
// the log up to index (every key written at that index), and commits it.
func (w storeContent) write(t testing.TB, st *store.Store, index uint64, cs *raftpb.ConfState) {
	t.Helper()
	for id, u := range w.members {
		if err := st.AddMember(id, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range w.removed {
		if err := st.RemoveMember(id); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range w.data {
		putAt(t, st, k, v, index)
	}
	st.SetApplied(index, 1, cs)
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
}

// snapshotDataOf commits st and has sf build a snapshot's data from a read
// transaction of it, as the snapshot encoder does.
func snapshotDataOf(t *testing.T, sf Codec, st *store.Store) []byte {
	t.Helper()
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, err := st.Backend().ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	data, err := sf.SnapshotData(tx)
	if err != nil {
		t.Fatalf("snapshotData: %v", err)
	}
	return data
}

// A raftexample snapshot built from the db is byte for byte what
// raftexample's getSnapshot writes for the same map.
func TestRaftexampleSnapshotBytes(t *testing.T) {
	cases := []struct {
		name string
		st   storeContent
		want string
	}{
		{"empty", storeContent{}, `{}`},
		{"sorted keys", storeContent{data: map[string]string{"/b": "2", "/a": "1", "/c?x=1": ""}}, `{"/a":"1","/b":"2","/c?x=1":""}`},
		// encoding/json escapes HTML characters and U+2028; raftexample
		// writes them so, and so must we.
		{"escapes", storeContent{data: map[string]string{"/h": "<&>", "/u": "é\u2028\"\\\n"}}, `{"/h":"\u003c\u0026\u003e","/u":"é\u2028\"\\\n"}`},
		{"members are not in it", storeContent{members: map[uint64]string{1: "http://a:2380"}, removed: []uint64{2},
			data: map[string]string{"/a": "1"}}, `{"/a":"1"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tmpStore(t)
			c.st.write(t, st, 5, raftpb.EnsureConfState(&raftpb.ConfState{Voters: []uint64{1}}))
			got := snapshotDataOf(t, raftexampleFormat{}, st)
			if string(got) != c.want {
				t.Fatalf("snapshot = %s, want %s", got, c.want)
			}
			// What raftexample's getSnapshot writes for the same map.
			kvStore := dataOf(t, st)
			theirs, err := json.Marshal(kvStore)
			if err != nil {
				t.Fatalf("json: %v", err)
			}
			if !bytes.Equal(got, theirs) {
				t.Fatalf("snapshot = %s, raftexample writes %s", got, theirs)
			}
		})
	}
}

// The snapshot is of the read transaction's commit: what was written since
// (the kv actor applies on while the encoder works) is not in it.
func TestRaftexampleSnapshotOfItsCommit(t *testing.T) {
	st := tmpStore(t)
	storeContent{data: map[string]string{"/a": "1"}}.write(t, st, 1, nil)
	tx, err := st.Backend().ReadTx()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	putAt(t, st, "/a", "2", 2)
	putAt(t, st, "/b", "2", 2)
	st.SetApplied(2, 1, nil)
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := (raftexampleFormat{}).SnapshotData(tx); err != nil || string(got) != `{"/a":"1"}` {
		t.Fatalf("snapshot of the commit at 1 = %s, %v; want {\"/a\":\"1\"}", got, err)
	}
}

func TestRaftexampleSnapshotRestore(t *testing.T) {
	known := map[uint64]string{1: "http://a:2380", 2: "http://b:2380", 9: "http://gone:2380"}
	cases := []struct {
		name        string
		data        string
		cs          *raftpb.ConfState
		known       map[uint64]string
		wantData    map[string]string
		wantMembers map[uint64]string
	}{
		{name: "empty data, no ConfState", data: "", wantData: map[string]string{}, wantMembers: map[uint64]string{}},
		{name: "empty map", data: `{}`, wantData: map[string]string{}, wantMembers: map[uint64]string{}},
		{name: "null", data: `null`, wantData: map[string]string{}, wantMembers: map[uint64]string{}},
		{name: "data", data: `{"/a":"1","/h":"\u003c\u0026\u003e","/e":""}`,
			wantData: map[string]string{"/a": "1", "/h": "<&>", "/e": ""}, wantMembers: map[uint64]string{}},
		{name: "members from every ConfState list with known URLs", data: `{"/a":"1"}`,
			cs: &raftpb.ConfState{
				Voters: []uint64{1, 3}, Learners: []uint64{4},
				VotersOutgoing: []uint64{1, 2}, LearnersNext: []uint64{5},
			},
			known:       known,
			wantData:    map[string]string{"/a": "1"},
			wantMembers: map[uint64]string{1: "http://a:2380", 2: "http://b:2380", 3: "", 4: "", 5: ""}},
		{name: "nothing known", data: ``, cs: &raftpb.ConfState{Voters: []uint64{1, 2}},
			wantData: map[string]string{}, wantMembers: map[uint64]string{1: "", 2: ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := maps.Clone(c.known)
			st := tmpStore(t)
			if err := (raftexampleFormat{}).Restore(st, []byte(c.data), 9, c.cs, c.known); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := dataOf(t, st); !maps.Equal(got, c.wantData) {
				t.Errorf("data = %q, want %q", got, c.wantData)
			}
			if got := st.Members(); !maps.Equal(got, c.wantMembers) {
				t.Errorf("members = %v, want %v", got, c.wantMembers)
			}
			if !maps.Equal(c.known, before) {
				t.Errorf("restore changed the known URLs: %v, was %v", c.known, before)
			}
			// Every key is written at the snapshot's index, as if created
			// by the entry there, and counted for the quota.
			var used uint64
			for k, v := range c.wantData {
				if kv, ok, err := st.Get(k); err != nil || !ok || kv.CreateRevision != 9 || kv.ModRevision != 9 || kv.Version != 1 {
					t.Errorf("%q restored as %+v (%v, %v), want created and modified at 9, version 1", k, kv, ok, err)
				}
				used += store.Cost(k, []byte(v))
			}
			if st.Keys() != len(c.wantData) || st.Used() != used {
				t.Errorf("%d keys using %d bytes, want %d using %d", st.Keys(), st.Used(), len(c.wantData), used)
			}
			// The members are in the db too, not only in memory: a store
			// opened on the db after it is committed finds them.
			path := st.Backend().Path()
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			again, _, err := store.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = again.Close() }()
			if got := again.Members(); !maps.Equal(got, c.wantMembers) {
				t.Errorf("db members %v, want %v", got, c.wantMembers)
			}
		})
	}
}

// A db's state goes through a raftexample snapshot into another db whole.
func TestRaftexampleSnapshotRoundTrip(t *testing.T) {
	orig := storeContent{data: map[string]string{"/a": "1", "/h": "<&>", "/u": "é\u2028", "/e": "", "/q?x=%20": "v"}}
	src := tmpStore(t)
	orig.write(t, src, 4, nil)
	data := snapshotDataOf(t, raftexampleFormat{}, src)
	dst := tmpStore(t)
	if err := (raftexampleFormat{}).Restore(dst, data, 4, nil, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := dataOf(t, dst); !maps.Equal(got, orig.data) {
		t.Fatalf("data %q, want %q", got, orig.data)
	}
}

func TestRaftexampleSnapshotMalformed(t *testing.T) {
	for _, data := range []string{
		"garbage",
		`{"/a":"1"`,
		`{"/a":1}`,
		`["/a"]`,
		`"x"`,
		string(legacysnap.Encode(nil, nil, map[string]string{"/a": "1"})), // a native snapshot
	} {
		if err := (raftexampleFormat{}).Restore(tmpStore(t), []byte(data), 1, nil, nil); !errors.Is(err, store.ErrBadSnapshot) {
			t.Errorf("restore(%q) = %v; want an error wrapping ErrBadSnapshot", data, err)
		}
	}
}

// The native format seen through Codec is command.go unchanged, and
// the indirection costs no allocation on the hot path. Its snapshots carry
// no data (the db goes with them); the inline data it restores is the
// previous layout's.
func TestNativeFormatIsTheCodec(t *testing.T) {
	sf, err := FormatNative.Codec()
	if err != nil {
		t.Fatalf("Codec: %v", err)
	}
	c := Command{Op: OpPut, ReqID: 300, Key: "key", Value: []byte("value")}
	data := mustEncode(t, sf, c)
	if !bytes.Equal(data, c.encode()) {
		t.Fatalf("encode = %x, want %x", data, c.encode())
	}
	if got, err := sf.Decode(data); err != nil || got.Key != c.Key || got.ReqID != c.ReqID || !bytes.Equal(got.Value, c.Value) {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	del := Command{Op: OpDelete, ReqID: 1, Key: "\xff"}
	if data, err := sf.Encode(del); err != nil || !bytes.Equal(data, del.encode()) {
		t.Fatalf("native encode of a delete with a binary key = %x, %v; want it encoded", data, err)
	}

	src := tmpStore(t)
	storeContent{members: map[uint64]string{1: "u"}, data: map[string]string{"k": "v"}}.write(t, src, 3, nil)
	if snap := snapshotDataOf(t, sf, src); snap != nil {
		t.Fatalf("native snapshot data = %q, want none", snap)
	}
	// The previous layout's own member list wins over the ConfState.
	st := tmpStore(t)
	legacy := legacysnap.Encode(map[uint64]string{1: "u"}, []uint64{2}, map[string]string{"k": "v"})
	if err := sf.Restore(st, legacy, 3, &raftpb.ConfState{Voters: []uint64{7}}, map[uint64]string{7: "x"}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := dataOf(t, st); !maps.Equal(got, map[string]string{"k": "v"}) ||
		!maps.Equal(st.Members(), map[uint64]string{1: "u"}) || !slices.Equal(st.Removed(), []uint64{2}) {
		t.Fatalf("restored %q, members %v, removed %v", got, st.Members(), st.Removed())
	}

	direct := testing.AllocsPerRun(100, func() { _ = c.encode() })
	viaFormat := testing.AllocsPerRun(100, func() { _, _ = sf.Encode(c) })
	if viaFormat > direct {
		t.Errorf("encode through the format allocates %v times, directly %v", viaFormat, direct)
	}
	direct = testing.AllocsPerRun(100, func() { _, _ = decodeCommand(data) })
	viaFormat = testing.AllocsPerRun(100, func() { _, _ = sf.Decode(data) })
	if viaFormat > direct {
		t.Errorf("decode through the format allocates %v times, directly %v", viaFormat, direct)
	}
}

func FuzzRaftexampleDecode(f *testing.F) {
	for _, c := range raftexamplePuts[:5] {
		f.Add(mustEncode(f, raftexampleFormat{}, c.cmd))
	}
	f.Add(kvtest.RaftexamplePropose(f, "/k", "v"))
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Add(Command{Op: OpPut, ReqID: 1, Key: "k", Value: []byte("v")}.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		c, err := raftexampleFormat{}.Decode(data)
		if !bytes.Equal(data, orig) {
			t.Fatalf("decode modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if c.Op != OpPut {
			t.Fatalf("decoded op %d, want a put", c.Op)
		}
		if CheckUTF8(c.Key, c.Value) != nil {
			return // raftexample members may write these; we apply them but never propose them
		}
		again, err := raftexampleFormat{}.Decode(mustEncode(t, raftexampleFormat{}, c))
		if err != nil || again.ReqID != c.ReqID || again.Key != c.Key || !bytes.Equal(again.Value, c.Value) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", brief(c), brief(again), err)
		}
	})
}
