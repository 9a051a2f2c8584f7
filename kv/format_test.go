package kv

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

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
		if _, err := f.codec(); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Format(%d).codec() error = %v, want ErrUnknownFormat", int(f), err)
		}
		if want := fmt.Sprintf("Format(%d)", int(f)); f.String() != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), f.String(), want)
		}
	}
}

// raftexampleKV is raftexample's own kv type (contrib/raftexample/kvstore.go).
type raftexampleKV struct {
	Key string
	Val string
}

// raftexamplePropose encodes as raftexample's kvstore.Propose does.
func raftexamplePropose(t testing.TB, k, v string) []byte {
	t.Helper()
	var buf strings.Builder
	if err := gob.NewEncoder(&buf).Encode(raftexampleKV{k, v}); err != nil {
		t.Fatalf("gob: %v", err)
	}
	return []byte(buf.String())
}

// raftexampleReadCommit decodes as raftexample's kvstore.readCommits does.
func raftexampleReadCommit(data []byte) (raftexampleKV, error) {
	var dataKv raftexampleKV
	err := gob.NewDecoder(bytes.NewBufferString(string(data))).Decode(&dataKv)
	return dataKv, err
}

func mustEncode(t testing.TB, sf stateFormat, c command) []byte {
	t.Helper()
	data, err := sf.encode(c)
	if err != nil {
		t.Fatalf("encode %+v: %v", brief(c), err)
	}
	return data
}

var raftexamplePuts = []struct {
	name string
	cmd  command
}{
	{"with id", command{op: opPut, reqID: 7, key: "/k", value: []byte("v")}},
	{"largest id", command{op: opPut, reqID: 1<<64 - 1, key: "/k", value: []byte("v")}},
	{"without id", command{op: opPut, key: "/k", value: []byte("v")}},
	{"empty key and value", command{op: opPut, reqID: 3, key: "", value: []byte{}}},
	{"raw request uri", command{op: opPut, reqID: 4, key: "/a%20b/c?x=1&y", value: []byte("q")}},
	{"unicode", command{op: opPut, reqID: 5, key: "/ключ", value: []byte("значение \u2028 \x00")}},
	{"large value", command{op: opPut, reqID: 6, key: "/big", value: bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}},
}

func TestRaftexampleEntryRoundTrip(t *testing.T) {
	for _, c := range raftexamplePuts {
		t.Run(c.name, func(t *testing.T) {
			data := mustEncode(t, raftexampleFormat{}, c.cmd)
			got, err := raftexampleFormat{}.decode(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.op != opPut || got.reqID != c.cmd.reqID || got.key != c.cmd.key || !bytes.Equal(got.value, c.cmd.value) {
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
			got, err := raftexampleReadCommit(mustEncode(t, raftexampleFormat{}, c.cmd))
			if err != nil {
				t.Fatalf("raftexample cannot decode our entry: %v", err)
			}
			if got.Key != c.cmd.key || got.Val != string(c.cmd.value) {
				t.Fatalf("raftexample read %q=%.32q, want %q=%.32q", got.Key, got.Val, c.cmd.key, c.cmd.value)
			}
		})
		t.Run("raftexample's read by us/"+c.name, func(t *testing.T) {
			got, err := raftexampleFormat{}.decode(raftexamplePropose(t, c.cmd.key, string(c.cmd.value)))
			if err != nil {
				t.Fatalf("decode raftexample's entry: %v", err)
			}
			if got.op != opPut || got.reqID != 0 || got.key != c.cmd.key || !bytes.Equal(got.value, c.cmd.value) {
				t.Fatalf("decoded %+v, want a put of %q without request id", brief(got), c.cmd.key)
			}
		})
	}
}

func TestRaftexampleEncodeRefuses(t *testing.T) {
	cases := []struct {
		name string
		cmd  command
		want error
	}{
		{"delete", command{op: opDelete, reqID: 1, key: "/k"}, messages.ErrUnsupported},
		{"delete of an invalid key", command{op: opDelete, reqID: 1, key: "\xff"}, messages.ErrUnsupported},
		{"key not utf-8", command{op: opPut, reqID: 1, key: "/\xff", value: []byte("v")}, ErrInvalidUTF8},
		{"value not utf-8", command{op: opPut, reqID: 1, key: "/k", value: []byte("ok \xc3")}, ErrInvalidUTF8},
		{"surrogate half in value", command{op: opPut, reqID: 1, key: "/k", value: []byte("\xed\xa0\x80")}, ErrInvalidUTF8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := raftexampleFormat{}.encode(c.cmd)
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
	valid := mustEncode(t, raftexampleFormat{}, command{op: opPut, reqID: 9, key: "/k", value: []byte("v")})
	cases := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"garbage", []byte("garbage")},
		{"native command", command{op: opPut, reqID: 1, key: "k", value: []byte("v")}.encode()},
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
			got, err := raftexampleFormat{}.decode(c.data)
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decode(%q) = %+v, %v; want an error wrapping ErrBadCommand", c.data, got, err)
			}
		})
	}
}

// snapshotDataOf commits st and has sf build a snapshot's data from a read
// transaction of it, as the snapshot encoder does.
func snapshotDataOf(t *testing.T, sf stateFormat, st *State) []byte {
	t.Helper()
	if err := st.be.commit(); err != nil {
		t.Fatal(err)
	}
	var data []byte
	err := st.be.db.View(func(tx *bolt.Tx) error {
		var err error
		data, err = sf.snapshotData(tx)
		return err
	})
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
		st   testState
		want string
	}{
		{"empty", testState{}, `{}`},
		{"sorted keys", testState{data: map[string]string{"/b": "2", "/a": "1", "/c?x=1": ""}}, `{"/a":"1","/b":"2","/c?x=1":""}`},
		// encoding/json escapes HTML characters and U+2028; raftexample
		// writes them so, and so must we.
		{"escapes", testState{data: map[string]string{"/h": "<&>", "/u": "é\u2028\"\\\n"}}, `{"/h":"\u003c\u0026\u003e","/u":"é\u2028\"\\\n"}`},
		{"members are not in it", testState{members: map[uint64]string{1: "http://a:2380"}, removed: []uint64{2},
			data: map[string]string{"/a": "1"}}, `{"/a":"1"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := openTestState(t, FormatRaftexample)
			c.st.write(t, st, 5, confState([]uint64{1}, nil))
			got := snapshotDataOf(t, raftexampleFormat{}, st)
			if string(got) != c.want {
				t.Fatalf("snapshot = %s, want %s", got, c.want)
			}
			// What raftexample's getSnapshot writes for the same map.
			kvStore := stateData(t, st.st)
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
	st := openTestState(t, FormatRaftexample)
	testState{data: map[string]string{"/a": "1"}}.write(t, st, 1, nil)
	tx, err := st.be.db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := st.be.put("/a", []byte("2"), 2, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.be.put("/b", []byte("2"), 2, 0); err != nil {
		t.Fatal(err)
	}
	st.be.setApplied(2, 1, nil)
	if err := st.be.commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := (raftexampleFormat{}).snapshotData(tx); err != nil || string(got) != `{"/a":"1"}` {
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
			st := openTestState(t, FormatRaftexample)
			if err := (raftexampleFormat{}).restore(st.st, []byte(c.data), 9, c.cs, c.known); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if got := stateData(t, st.st); !maps.Equal(got, c.wantData) {
				t.Errorf("data = %q, want %q", got, c.wantData)
			}
			if !maps.Equal(st.st.members, c.wantMembers) {
				t.Errorf("members = %v, want %v", st.st.members, c.wantMembers)
			}
			if !maps.Equal(c.known, before) {
				t.Errorf("restore changed the known URLs: %v, was %v", c.known, before)
			}
			// Every key is written at the snapshot's index, as if created
			// by the entry there, and counted for the quota.
			var used uint64
			for k, v := range c.wantData {
				if r, ok := mustGet(t, st.be, k); !ok || r.createRev != 9 || r.modRev != 9 || r.version != 1 {
					t.Errorf("%q restored as %+v (%v), want created and modified at 9, version 1", k, r, ok)
				}
				used += cost(k, []byte(v))
			}
			if st.st.keys() != len(c.wantData) || st.be.meta.used != used {
				t.Errorf("%d keys using %d bytes, want %d using %d", st.st.keys(), st.be.meta.used, len(c.wantData), used)
			}
			// The members are in the db too, not only in memory.
			if ms, _, err := readMembers(st.be.tx); err != nil || len(ms) != len(c.wantMembers) {
				t.Errorf("db members %v (%v), want %v", ms, err, c.wantMembers)
			}
		})
	}
}

// A db's state goes through a raftexample snapshot into another db whole.
func TestRaftexampleSnapshotRoundTrip(t *testing.T) {
	orig := testState{data: map[string]string{"/a": "1", "/h": "<&>", "/u": "é\u2028", "/e": "", "/q?x=%20": "v"}}
	src := openTestState(t, FormatRaftexample)
	orig.write(t, src, 4, nil)
	data := snapshotDataOf(t, raftexampleFormat{}, src)
	dst := openTestState(t, FormatRaftexample)
	if err := (raftexampleFormat{}).restore(dst.st, data, 4, nil, nil); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := stateData(t, dst.st); !maps.Equal(got, orig.data) {
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
		string(legacySnapshot(t, nil, nil, map[string]string{"/a": "1"})), // a native snapshot
	} {
		if err := (raftexampleFormat{}).restore(openTestState(t, FormatRaftexample).st, []byte(data), 1, nil, nil); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("restore(%q) = %v; want an error wrapping ErrBadSnapshot", data, err)
		}
	}
}

// The native format seen through stateFormat is command.go unchanged, and
// the indirection costs no allocation on the hot path. Its snapshots carry
// no data (the db goes with them); the inline data it restores is the
// previous layout's.
func TestNativeFormatIsTheCodec(t *testing.T) {
	sf, err := FormatNative.codec()
	if err != nil {
		t.Fatalf("stateFormat: %v", err)
	}
	c := command{op: opPut, reqID: 300, key: "key", value: []byte("value")}
	data := mustEncode(t, sf, c)
	if !bytes.Equal(data, c.encode()) {
		t.Fatalf("encode = %x, want %x", data, c.encode())
	}
	if got, err := sf.decode(data); err != nil || got.key != c.key || got.reqID != c.reqID || !bytes.Equal(got.value, c.value) {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	del := command{op: opDelete, reqID: 1, key: "\xff"}
	if data, err := sf.encode(del); err != nil || !bytes.Equal(data, del.encode()) {
		t.Fatalf("native encode of a delete with a binary key = %x, %v; want it encoded", data, err)
	}

	src := openTestState(t, FormatNative)
	testState{members: map[uint64]string{1: "u"}, data: map[string]string{"k": "v"}}.write(t, src, 3, nil)
	if snap := snapshotDataOf(t, sf, src); snap != nil {
		t.Fatalf("native snapshot data = %q, want none", snap)
	}
	// The previous layout's own member list wins over the ConfState.
	st := openTestState(t, FormatNative)
	legacy := legacySnapshot(t, map[uint64]string{1: "u"}, []uint64{2}, map[string]string{"k": "v"})
	if err := sf.restore(st.st, legacy, 3, &raftpb.ConfState{Voters: []uint64{7}}, map[uint64]string{7: "x"}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := stateData(t, st.st); !maps.Equal(got, map[string]string{"k": "v"}) ||
		!maps.Equal(st.st.members, map[uint64]string{1: "u"}) || !maps.Equal(st.st.removed, map[uint64]bool{2: true}) {
		t.Fatalf("restored %q, members %v, removed %v", got, st.st.members, st.st.removed)
	}

	direct := testing.AllocsPerRun(100, func() { _ = c.encode() })
	viaFormat := testing.AllocsPerRun(100, func() { _, _ = sf.encode(c) })
	if viaFormat > direct {
		t.Errorf("encode through the format allocates %v times, directly %v", viaFormat, direct)
	}
	direct = testing.AllocsPerRun(100, func() { _, _ = decodeCommand(data) })
	viaFormat = testing.AllocsPerRun(100, func() { _, _ = sf.decode(data) })
	if viaFormat > direct {
		t.Errorf("decode through the format allocates %v times, directly %v", viaFormat, direct)
	}
}

func FuzzRaftexampleDecode(f *testing.F) {
	for _, c := range raftexamplePuts[:5] {
		f.Add(mustEncode(f, raftexampleFormat{}, c.cmd))
	}
	f.Add(raftexamplePropose(f, "/k", "v"))
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Add(command{op: opPut, reqID: 1, key: "k", value: []byte("v")}.encode())
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		c, err := raftexampleFormat{}.decode(data)
		if !bytes.Equal(data, orig) {
			t.Fatalf("decode modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if c.op != opPut {
			t.Fatalf("decoded op %d, want a put", c.op)
		}
		if CheckUTF8(c.key, c.value) != nil {
			return // raftexample members may write these; we apply them but never propose them
		}
		again, err := raftexampleFormat{}.decode(mustEncode(t, raftexampleFormat{}, c))
		if err != nil || again.reqID != c.reqID || again.key != c.key || !bytes.Equal(again.value, c.value) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", brief(c), brief(again), err)
		}
	})
}
