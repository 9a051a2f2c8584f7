package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/node/internal/legacysnap"
)

// legacySnapshot writes a snapshot of the previous layout (legacy.go), as
// the earlier versions of this package wrote them, for the migration tests.
func legacySnapshot(t testing.TB, members map[uint64]string, removed []uint64, data map[string]string) []byte {
	t.Helper()
	b := legacysnap.Encode(members, removed, data)
	if !bytes.HasPrefix(b, []byte(legacyMagicV3)) {
		t.Fatalf("internal/legacysnap writes %q, which legacy.go does not read as version 3", b[:4])
	}
	return b
}

// stateData reads every key and value of a store.
func stateData(t testing.TB, s *store) map[string]string {
	t.Helper()
	out, err := storeData(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// storeData is stateData for a goroutine that may not call t.Fatal, such as
// the kv actor's (the fixture's Deliver reads the state there).
func storeData(s *store) (map[string]string, error) {
	out := make(map[string]string)
	err := forEach(s.be.tx, func(k []byte, r record) error {
		out[string(k)] = string(r.value)
		return nil
	})
	return out, err
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
			b = appendBytes(b, []byte(members[1]))
			b = binary.AppendUvarint(b, 300)
			b = appendBytes(b, []byte(members[300]))
			b = binary.AppendUvarint(b, 1) // one removed
			b = binary.AppendUvarint(b, 2)
			b = binary.AppendUvarint(b, 1) // one key
			b = appendBytes(b, []byte("k"))
			return appendBytes(b, []byte("v"))
		}(), []uint64{2}, map[string]string{"k": "v"}},
		{"version 1", func() []byte {
			b := []byte(legacyMagicV1)
			b = binary.AppendUvarint(b, 2)
			b = binary.AppendUvarint(b, 1)
			b = appendBytes(b, []byte(members[1]))
			b = binary.AppendUvarint(b, 300)
			b = appendBytes(b, []byte(members[300]))
			b = binary.AppendUvarint(b, 1) // one key
			b = appendBytes(b, []byte("k"))
			return appendBytes(b, []byte("v"))
		}(), nil, map[string]string{"k": "v"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openTestState(t, FormatNative).st
			if err := restoreLegacy(s, c.snap, 9); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(s.members, members) || !slices.Equal(slices.Sorted(maps.Keys(s.removed)), c.removed) {
				t.Fatalf("members %v removed %v", s.members, s.removed)
			}
			if got := stateData(t, s); !maps.Equal(got, c.data) {
				t.Fatalf("data %q", got)
			}
			// The decoded values must not alias the snapshot, which may be
			// reused.
			for i := range c.snap {
				c.snap[i] = 0
			}
			if got := stateData(t, s); !maps.Equal(got, c.data) {
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
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := restoreLegacy(openTestState(t, FormatNative).st, c.data, 1); !errors.Is(err, ErrBadSnapshot) {
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
	s := openTestState(t, FormatNative).st
	for n := 1; n < len(valid); n++ {
		if err := s.reset(1); err != nil {
			t.Fatal(err)
		}
		if err := restoreLegacy(s, valid[:n], 1); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("restoreLegacy of the first %d of %d bytes = %v; want ErrBadSnapshot", n, len(valid), err)
		}
	}
}

// A member's records follow its conf changes: added with its URL, given
// client URLs, removed with them, its id then known as removed until it is
// added again.
func TestStoreMembers(t *testing.T) {
	s := openTestState(t, FormatNative).st
	steps := []func() error{
		func() error { return s.addMember(4, "http://d:1") },
		func() error { _, err := s.apply(attrsCommand(4, []string{"http://d:2"}), 2, 0); return err },
		func() error { return s.removeMember(4) },
		func() error { _, err := s.apply(attrsCommand(4, []string{"http://late:2"}), 4, 0); return err }, // removed meanwhile: ignored
		func() error { return s.addMember(4, "http://d:3") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if s.members[4] != "http://d:3" || len(s.clients[4]) != 0 || len(s.removed) != 0 {
		t.Fatalf("members %v clients %v removed %v", s.members, s.clients, s.removed)
	}
	ms, removed, err := readMembers(s.be.tx)
	if err != nil || ms[4].peerURL != "http://d:3" || len(ms[4].clientURLs) != 0 || len(removed) != 0 {
		t.Fatalf("db members %v removed %v (%v)", ms, removed, err)
	}
}
