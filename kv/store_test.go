package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func storeOf(members map[uint64]string, data map[string]string) *store {
	s := newStore()
	maps.Copy(s.members, members)
	for k, v := range data {
		s.data.set(k, []byte(v))
	}
	return s
}

func sameStore(t *testing.T, got, want *store) {
	t.Helper()
	if !maps.Equal(got.members, want.members) {
		t.Errorf("members = %v, want %v", got.members, want.members)
	}
	if !maps.Equal(got.removed, want.removed) {
		t.Errorf("removed = %v, want %v", got.removed, want.removed)
	}
	if !maps.EqualFunc(got.clients, want.clients, slices.Equal) {
		t.Errorf("client URLs = %v, want %v", got.clients, want.clients)
	}
	if !maps.EqualFunc(plain(got.data), plain(want.data), bytes.Equal) {
		t.Errorf("data = %q, want %q", plain(got.data), plain(want.data))
	}
}

func TestStoreMarshalRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		st   *store
	}{
		{"empty", newStore()},
		{"members only", storeOf(map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}, nil)},
		{"keys only", storeOf(nil, map[string]string{"a": "1", "b": "2"})},
		{"members and keys", storeOf(
			map[uint64]string{1: "http://a:2380", 1 << 63: "", 300: "http://c:2380"},
			map[string]string{"": "empty key", "empty value": "", "\x00\xff": "\x00\x80\xff", "big": strings.Repeat("x", 100000)},
		)},
		{"removed members", withRemoved(storeOf(map[uint64]string{1: "http://a:2380"}, map[string]string{"a": "1"}), 2, 1<<63)},
		{"client URLs", withClients(storeOf(map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}, nil),
			map[uint64][]string{1: {"http://a:2379", "https://a:2378"}, 2: {}})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.st.freeze().marshal()
			if !bytes.HasPrefix(b, []byte(snapshotMagic)) {
				t.Fatalf("encoding %q does not start with the magic", b[:min(len(b), 8)])
			}
			got, err := unmarshalStore(b)
			if err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			sameStore(t, got, c.st)
			// The decoded values must not alias the encoding, which belongs
			// to the snapshot and may be reused.
			for i := range b {
				b[i] = 0
			}
			sameStore(t, got, c.st)
		})
	}
}

func withClients(s *store, clients map[uint64][]string) *store {
	maps.Copy(s.clients, clients)
	return s
}

// A version 2 snapshot, written before client URLs were published, still
// restores: with its members, removed ids and keys, and no client URLs.
func TestUnmarshalStoreVersion2(t *testing.T) {
	v2 := []byte("RKV2")
	v2 = binary.AppendUvarint(v2, 1) // one member
	v2 = binary.AppendUvarint(v2, 7)
	v2 = appendBytes(v2, []byte("http://a:2380"))
	v2 = binary.AppendUvarint(v2, 1) // one removed
	v2 = binary.AppendUvarint(v2, 3)
	v2 = binary.AppendUvarint(v2, 1) // one key
	v2 = appendBytes(v2, []byte("k"))
	v2 = appendBytes(v2, []byte("v"))
	got, err := unmarshalStore(v2)
	if err != nil {
		t.Fatalf("unmarshal a version 2 snapshot: %v", err)
	}
	sameStore(t, got, withRemoved(storeOf(map[uint64]string{7: "http://a:2380"}, map[string]string{"k": "v"}), 3))
}

func withRemoved(s *store, ids ...uint64) *store {
	for _, id := range ids {
		s.removed[id] = true
	}
	return s
}

// A version 1 snapshot, written before removed members were kept, still
// restores: with its members and keys, and nobody removed.
func TestUnmarshalStoreVersion1(t *testing.T) {
	v1 := []byte("RKV1")
	v1 = binary.AppendUvarint(v1, 1) // one member
	v1 = binary.AppendUvarint(v1, 7)
	v1 = appendBytes(v1, []byte("http://a:2380"))
	v1 = binary.AppendUvarint(v1, 1) // one key
	v1 = appendBytes(v1, []byte("k"))
	v1 = appendBytes(v1, []byte("v"))
	got, err := unmarshalStore(v1)
	if err != nil {
		t.Fatalf("unmarshal a version 1 snapshot: %v", err)
	}
	sameStore(t, got, storeOf(map[uint64]string{7: "http://a:2380"}, map[string]string{"k": "v"}))
}

func TestUnmarshalStoreEmpty(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		s, err := unmarshalStore(b)
		if err != nil {
			t.Fatalf("unmarshalStore(%v): %v", b, err)
		}
		if s.data.len() != 0 || len(s.members) != 0 || s.data == nil || s.members == nil {
			t.Fatalf("unmarshalStore(%v) = %+v, want an empty usable store", b, s)
		}
		s.apply(command{op: opPut, key: "k", value: []byte("v")}) // must not panic on a nil map
	}
}

func TestUnmarshalStoreMalformed(t *testing.T) {
	valid := storeOf(map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}, map[string]string{"a": "1", "bb": "22"}).freeze().marshal()
	cases := []struct {
		name string
		data []byte
	}{
		{"short magic", []byte("RKV")},
		{"bad magic", append([]byte("RKV9"), valid[4:]...)},
		{"other format", []byte(`{"a":"1"}`)},
		{"magic only", []byte(snapshotMagic)},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"trailing bytes", append(bytes.Clone(valid), "more"...)},
		{"member count past the end", []byte(snapshotMagic + "\x05\x01\x00\x00")},
		{"key count past the end", []byte(snapshotMagic + "\x00\x05\x01a\x01b")},
		{"huge key count", []byte(snapshotMagic + "\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
		{"removed count past the end", []byte(snapshotMagic + "\x00\x03\x01\x02")},
		{"client URL count past the end", []byte(snapshotMagic + "\x00\x00\x01\x01\x05\x01a")},
		{"client URL past the end", []byte(snapshotMagic + "\x00\x00\x01\x01\x01\x05ab")},
		{"huge field length", []byte(snapshotMagic + "\x01\x01\xff\xff\xff\xff\x0f")},
		{"integer overflows 64 bits", []byte(snapshotMagic + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if s, err := unmarshalStore(c.data); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("unmarshalStore(%q) = %+v, %v; want an error wrapping ErrBadSnapshot", c.data, s, err)
			}
		})
	}
}

// Every proper prefix of a valid encoding is refused: a snapshot cut short
// must never restore as a smaller state.
func TestUnmarshalStoreTruncated(t *testing.T) {
	valid := storeOf(
		map[uint64]string{1: "http://a:2380", 300: "http://b:2380"},
		map[string]string{"a": "1", "bb": "", "": "x", "long": strings.Repeat("v", 200)},
	).freeze().marshal()
	for n := 1; n < len(valid); n++ {
		if s, err := unmarshalStore(valid[:n]); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("unmarshalStore of the first %d of %d bytes = %+v, %v; want ErrBadSnapshot", n, len(valid), s, err)
		}
	}
}

func FuzzUnmarshalStore(f *testing.F) {
	f.Add([]byte{})
	f.Add(newStore().freeze().marshal())
	f.Add(storeOf(map[uint64]string{1: "u"}, map[string]string{"k": "v", "": ""}).freeze().marshal())
	f.Add([]byte(snapshotMagic + "\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := unmarshalStore(data)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error %v does not wrap ErrBadSnapshot", err)
			}
			return
		}
		again, err := unmarshalStore(s.freeze().marshal())
		if err != nil {
			t.Fatalf("re-marshalled store does not decode: %v", err)
		}
		sameStore(t, again, s)
	})
}

func TestStoreApply(t *testing.T) {
	s := newStore()
	value := []byte("v1")
	s.apply(command{op: opPut, key: "k", value: value})
	// The entry's bytes belong to raft's log; the store must keep its own.
	value[0] = 'X'
	if v, ok := s.get("k"); !ok || string(v) != "v1" {
		t.Fatalf("get k = %q, %v after the entry's bytes changed; want v1", v, ok)
	}
	s.apply(command{op: opPut, key: "empty"})
	if v, ok := s.get("empty"); !ok || len(v) != 0 {
		t.Fatalf("get empty = %q, %v; want an empty value that is found", v, ok)
	}
	s.apply(command{op: opDelete, key: "k"})
	s.apply(command{op: opDelete, key: "never there"})
	if v, ok := s.get("k"); ok {
		t.Fatalf("get k = %q after delete, want not found", v)
	}
	if s.data.len() != 1 {
		t.Fatalf("data = %q, want only the empty value", plain(s.data))
	}
}

// The digest depends on the keys and values only, not on insertion order,
// and tells apart states that concatenation would confuse.
func TestStoreDigest(t *testing.T) {
	build := func(kvs ...string) *store {
		s := newStore()
		for i := 0; i < len(kvs); i += 2 {
			s.data.set(kvs[i], []byte(kvs[i+1]))
		}
		return s
	}
	a := build("a", "1", "b", "2")
	b := build("b", "2", "a", "1")
	if a.digest() != b.digest() {
		t.Fatal("same state, different digests")
	}
	for _, other := range []*store{build("a", "1"), build("a", "1", "b", "3"), build("a", "1b", "", "2"), build()} {
		if other.digest() == a.digest() {
			t.Fatalf("different states %v and %v share a digest", other.data, a.data)
		}
	}
}

// plain copies c into an ordinary map, for comparing and printing.
func plain(c *cowMap) map[string][]byte {
	m := make(map[string][]byte, c.len())
	for k, v := range c.all() {
		m[k] = v
	}
	return m
}
