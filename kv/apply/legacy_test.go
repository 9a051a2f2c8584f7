package apply

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/legacysnap"
	"github.com/raftkv/node/kv/backend/backendtest"
	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/kv/store"
)

// legacySnapshot writes a snapshot of the previous layout (legacy.go), as
// the earlier versions of package kv wrote them, for the migration tests.
func legacySnapshot(t testing.TB, members map[uint64]string, removed []uint64, data map[string]string) []byte {
	t.Helper()
	b := legacysnap.Encode(members, removed, data)
	if !bytes.HasPrefix(b, []byte(legacyMagicV3)) {
		t.Fatalf("internal/legacysnap writes %q, which legacy.go does not read as version 3", b[:4])
	}
	return b
}

// legacyStore is an empty store for a restore, over a db in a temporary
// directory of t.
func legacyStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.New(backendtest.NewTmpBackend(t))
	if err != nil {
		t.Fatalf("store over a new db: %v", err)
	}
	return s
}

// legacyData reads every key and value a store holds, written or not.
func legacyData(t testing.TB, s *store.Store) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := store.ForEach(s.Backend().Tx(), func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRestoreLegacy(t *testing.T) {
	members := map[uint64]string{1: "http://a:2380", 300: "http://c:2380"}
	data := map[string]string{"empty value": "", "\x00\xff": "\x00\x80\xff", "big": strings.Repeat("x", 100000)}
	for _, c := range []struct {
		name    string
		snap    []byte
		removed []uint64
		data    map[string]string
	}{
		{"version 3", legacySnapshot(t, members, []uint64{2}, data), []uint64{2}, data},
		{"version 2", func() []byte {
			b := []byte(legacyMagicV2)
			b = binary.AppendUvarint(b, 2)
			b = binary.AppendUvarint(b, 1)
			b = wire.AppendBytes(b, []byte(members[1]))
			b = binary.AppendUvarint(b, 300)
			b = wire.AppendBytes(b, []byte(members[300]))
			b = binary.AppendUvarint(b, 1) // one removed
			b = binary.AppendUvarint(b, 2)
			b = binary.AppendUvarint(b, 1) // one key
			b = wire.AppendBytes(b, []byte("k"))
			return wire.AppendBytes(b, []byte("v"))
		}(), []uint64{2}, map[string]string{"k": "v"}},
		{"version 1", func() []byte {
			b := []byte(legacyMagicV1)
			b = binary.AppendUvarint(b, 2)
			b = binary.AppendUvarint(b, 1)
			b = wire.AppendBytes(b, []byte(members[1]))
			b = binary.AppendUvarint(b, 300)
			b = wire.AppendBytes(b, []byte(members[300]))
			b = binary.AppendUvarint(b, 1) // one key
			b = wire.AppendBytes(b, []byte("k"))
			return wire.AppendBytes(b, []byte("v"))
		}(), nil, map[string]string{"k": "v"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := legacyStore(t)
			if err := restoreLegacy(s, c.snap, 9); err != nil {
				t.Fatal(err)
			}
			if removed := slices.Sorted(slices.Values(s.Removed())); !maps.Equal(s.Members(), members) || !slices.Equal(removed, c.removed) {
				t.Fatalf("members %v removed %v", s.Members(), removed)
			}
			if got := legacyData(t, s); !maps.Equal(got, c.data) {
				t.Fatalf("data %q", got)
			}
			for k := range c.data {
				if kv, ok, err := s.Get(k); err != nil || !ok || kv.CreateRevision != 9 || kv.ModRevision != 9 || kv.Version != 1 {
					t.Fatalf("%q restored as %+v (%v, %v), want written at 9", k, kv, ok, err)
				}
			}
			// The decoded values must not alias the snapshot, which may be
			// reused.
			for i := range c.snap {
				c.snap[i] = 0
			}
			if got := legacyData(t, s); !maps.Equal(got, c.data) {
				t.Fatalf("data %q after the snapshot was overwritten", got)
			}
		})
	}
}

func TestRestoreLegacyMalformed(t *testing.T) {
	valid := legacySnapshot(t, map[uint64]string{1: "http://a:2380", 2: "http://b:2380"}, nil, map[string]string{"a": "1", "bb": "22"})
	m := legacyMagicV3
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"short magic", []byte("RKV")},
		{"bad magic", append([]byte("RKV9"), valid[4:]...)},
		{"other format", []byte(`{"a":"1"}`)},
		{"magic only", []byte(m)},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"trailing bytes", append(bytes.Clone(valid), "more"...)},
		{"member count past the end", []byte(m + "\x05\x01\x00\x00")},
		{"key count past the end", []byte(m + "\x00\x00\x00\x05\x01a\x01b")},
		{"huge key count", []byte(m + "\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
		{"removed count past the end", []byte(m + "\x00\x03\x01\x02")},
		{"client URL count past the end", []byte(m + "\x00\x00\x01\x01\x05\x01a")},
		{"client URL past the end", []byte(m + "\x00\x00\x01\x01\x01\x05ab")},
		{"huge field length", []byte(m + "\x01\x01\xff\xff\xff\xff\x0f")},
		{"integer overflows 64 bits", []byte(m + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02")},
		{"an empty key", []byte(m + "\x00\x00\x00\x01\x00\x01v")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := restoreLegacy(legacyStore(t), c.data, 1); !errors.Is(err, store.ErrBadSnapshot) {
				t.Fatalf("restoreLegacy(%q) = %v; want an error wrapping ErrBadSnapshot", c.data, err)
			}
		})
	}
}

// Every proper prefix of a valid snapshot is refused: a snapshot cut short
// must never restore as a smaller state.
func TestRestoreLegacyTruncated(t *testing.T) {
	valid := legacySnapshot(t, map[uint64]string{1: "http://a:2380", 300: "http://b:2380"}, []uint64{5},
		map[string]string{"a": "1", "bb": "", "long": strings.Repeat("v", 200)})
	s := legacyStore(t)
	for n := 1; n < len(valid); n++ {
		if err := s.Reset(1); err != nil {
			t.Fatal(err)
		}
		if err := restoreLegacy(s, valid[:n], 1); !errors.Is(err, store.ErrBadSnapshot) {
			t.Fatalf("restoreLegacy of the first %d of %d bytes = %v; want ErrBadSnapshot", n, len(valid), err)
		}
	}
	// The whole of it restores: the refusals are the cuts'.
	if err := s.Reset(1); err != nil {
		t.Fatal(err)
	}
	if err := restoreLegacy(s, valid, 1); err != nil {
		t.Fatalf("restoreLegacy of the whole snapshot: %v", err)
	}
}
