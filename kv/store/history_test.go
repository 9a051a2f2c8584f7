package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/messages"
)

// histEntry is one element of the history bucket, decoded.
type histEntry struct {
	rev   uint64
	seq   uint32
	ch    change
	bytes int // the encoded value's size
}

func (h histEntry) String() string {
	s := fmt.Sprintf("%d.%d %d %s", h.rev, h.seq, h.ch.typ, h.ch.key)
	if h.ch.existed {
		s += fmt.Sprintf(" (was m%d v%d %q)", h.ch.prev.modRev, h.ch.prev.version, h.ch.prev.value)
	}
	return s
}

// historyOf reads the history bucket of tx whole.
func historyOf(t testing.TB, tx *bolt.Tx) []histEntry {
	t.Helper()
	var out []histEntry
	err := tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
		if len(k) != 12 {
			return fmt.Errorf("history key %x", k)
		}
		ch, err := decodeChange(slices.Clone(v))
		if err != nil {
			return err
		}
		out = append(out, histEntry{rev: histRev(k), seq: binary.BigEndian.Uint32(k[8:]), ch: ch, bytes: len(v)})
		return nil
	})
	if err != nil {
		t.Fatalf("reading the history: %v", err)
	}
	return out
}

// checkHistoryCounters checks that the meta data counts the history bucket
// as it is.
func checkHistoryCounters(t testing.TB, s *Store) {
	t.Helper()
	h := historyOf(t, s.be.Tx())
	n := 0
	for _, e := range h {
		n += e.bytes
	}
	if s.meta.histEvents != uint64(len(h)) || s.meta.histBytes != uint64(n) {
		t.Fatalf("meta counts %d events, %d bytes; the bucket holds %d, %d", s.meta.histEvents, s.meta.histBytes, len(h), n)
	}
	if s.HistoryEvents() != uint64(len(h)) {
		t.Fatalf("HistoryEvents() = %d, the bucket holds %d", s.HistoryEvents(), len(h))
	}
}

// Each change is one event, numbered within its revision in the order the
// entry made it, with the record it replaced.
func TestHistoryRecordsChanges(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "c", "1", 1)
	// A batch entry at 3: several commands.
	for i, op := range []func() error{
		func() error { return s.Put("a", []byte("A"), 3, 0) },
		func() error { return s.Put("b", []byte("B"), 3, 0) },
		func() error { _, err := s.DeleteRange("c", "", 3); return err },
		func() error { _, err := s.DeleteRange("absent", "", 3); return err }, // changes nothing: no event
		func() error { return s.SetClients(1, []string{"http://x"}) },         // not a key: no event
	} {
		if err := op(); err != nil {
			t.Fatalf("command %d at 3: %v", i, err)
		}
	}
	// A transaction at 4.
	if _, _, err := s.Txn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "A2"), kvtest.TxnDelRange("b", "c"), kvtest.TxnPut("d", "D")}}, 4, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range historyOf(t, s.be.Tx()) {
		got = append(got, e.String())
	}
	want := []string{
		"1.0 1 c",
		"3.0 1 a",
		"3.1 1 b",
		`3.2 2 c (was m1 v1 "1")`,
		`4.0 1 a (was m3 v1 "A")`,
		`4.1 2 b (was m3 v1 "B")`,
		"4.2 1 d",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("history\n%q\nwant\n%q", got, want)
	}
	checkHistoryCounters(t, s)
	if s.Revision() != 4 {
		t.Fatalf("revision %d, want 4", s.Revision())
	}
	// The events handed to the watch hub are the same changes, in order.
	var evs []string
	for _, e := range s.TakeEvents() {
		evs = append(evs, fmt.Sprintf("%d %s@%d v%d", e.Type, e.KV.Key, e.Revision(), e.KV.Version))
	}
	if want := "[1 c@1 v1 1 a@3 v1 1 b@3 v1 2 c@3 v0 1 a@4 v2 2 b@4 v0 1 d@4 v1]"; fmt.Sprint(evs) != want {
		t.Fatalf("events %v, want %s", evs, want)
	}
	if evs := s.TakeEvents(); len(evs) != 0 {
		t.Fatalf("events taken twice: %v", evs)
	}
}

// historyFixture is a store whose history holds, at revisions 1 to 5,
// 1, 2, 3, 1 and 2 events, and the size of each revision's events.
func historyFixture(t *testing.T) (*Store, map[uint64]uint64) {
	t.Helper()
	s := newTestStore(t)
	for rev, n := range []int{1, 2, 3, 1, 2} {
		for i := range n {
			mustPut(t, s, fmt.Sprintf("k%d-%d", rev+1, i), fmt.Sprintf("value of size %d", (rev+1)*100+i), uint64(rev+1))
		}
	}
	sizes := map[uint64]uint64{}
	for _, e := range historyOf(t, s.be.Tx()) {
		sizes[e.rev] += uint64(e.bytes)
	}
	return s, sizes
}

// The oldest revisions are dropped whole while either bound is exceeded,
// and the compacted revision says which is the newest gone.
func TestCompactHistory(t *testing.T) {
	_, sizes := historyFixture(t)
	total := sizes[1] + sizes[2] + sizes[3] + sizes[4] + sizes[5]
	cases := []struct {
		name       string
		maxEvents  uint64
		maxBytes   uint64
		compacted  uint64
		keptRevs   []uint64
		keptEvents int
	}{
		{name: "within both", maxEvents: 9, maxBytes: total, keptRevs: []uint64{1, 2, 3, 4, 5}, keptEvents: 9},
		{name: "one event too many", maxEvents: 8, maxBytes: math.MaxUint64, compacted: 1, keptRevs: []uint64{2, 3, 4, 5}, keptEvents: 8},
		{name: "a revision is never split", maxEvents: 7, maxBytes: math.MaxUint64, compacted: 2, keptRevs: []uint64{3, 4, 5}, keptEvents: 6},
		{name: "events bound", maxEvents: 4, maxBytes: math.MaxUint64, compacted: 3, keptRevs: []uint64{4, 5}, keptEvents: 3},
		{name: "everything", maxEvents: 0, maxBytes: math.MaxUint64, compacted: 5},
		{name: "one byte too many", maxEvents: 100, maxBytes: total - 1, compacted: 1, keptRevs: []uint64{2, 3, 4, 5}, keptEvents: 8},
		{name: "bytes bound", maxEvents: 100, maxBytes: sizes[5], compacted: 4, keptRevs: []uint64{5}, keptEvents: 2},
		{name: "the newest revision alone is too big", maxEvents: 100, maxBytes: sizes[5] - 1, compacted: 5},
		{name: "both bounds, bytes the tighter", maxEvents: 6, maxBytes: sizes[4] + sizes[5], compacted: 3, keptRevs: []uint64{4, 5}, keptEvents: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := historyFixture(t)
			if err := s.CompactHistory(c.maxEvents, c.maxBytes); err != nil {
				t.Fatal(err)
			}
			h := historyOf(t, s.be.Tx())
			var revs []uint64
			for _, e := range h {
				if len(revs) == 0 || revs[len(revs)-1] != e.rev {
					revs = append(revs, e.rev)
				}
			}
			if !slices.Equal(revs, c.keptRevs) || len(h) != c.keptEvents {
				t.Fatalf("kept revisions %v (%d events), want %v (%d)", revs, len(h), c.keptRevs, c.keptEvents)
			}
			if s.meta.compacted != c.compacted || s.Compacted() != c.compacted {
				t.Fatalf("compacted %d (Compacted() %d), want %d", s.meta.compacted, s.Compacted(), c.compacted)
			}
			checkHistoryCounters(t, s)
			if s.Revision() != 5 {
				t.Fatalf("compaction moved the store revision to %d", s.Revision())
			}
			// The compacted revision is durable with the rest.
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			m, err := committedMeta(s)
			if err != nil || m.compacted != c.compacted || m.histEvents != uint64(c.keptEvents) {
				t.Fatalf("committed meta %+v (%v), want compacted %d with %d events", m, err, c.compacted, c.keptEvents)
			}
		})
	}
}

// ReadEvents reads the committed history, whole revisions at a time, from
// any goroutine, while the store's owner holds uncommitted writes.
func TestReadEvents(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "a", "1", 1)
	mustPut(t, s, "b", "1", 1)
	mustPut(t, s, "c", "1", 1)
	mustPut(t, s, "a", "2", 2)
	mustPut(t, s, "d", "1", 4)
	mustDel(t, s, "b", 4)
	s.SetApplied(5, 1, nil) // 5 changed nothing
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	// Not committed: no reader sees these.
	mustPut(t, s, "e", "1", 6)
	mustPut(t, s, "a", "3", 6)

	cases := []struct {
		from        uint64
		max         int
		events      string
		through     uint64
		wantCompact bool
	}{
		{from: 1, max: 100, events: "[a@1 b@1 c@1 a@2 d@4 -b@4]", through: 4},
		{from: 1, max: 1, events: "[a@1 b@1 c@1]", through: 1}, // never half a revision
		{from: 1, max: 3, events: "[a@1 b@1 c@1]", through: 1},
		{from: 1, max: 4, events: "[a@1 b@1 c@1 a@2]", through: 2},
		{from: 2, max: 1, events: "[a@2]", through: 2},
		{from: 2, max: 2, events: "[a@2 d@4 -b@4]", through: 4},
		{from: 3, max: 1, events: "[d@4 -b@4]", through: 4},
		{from: 4, max: 1, events: "[d@4 -b@4]", through: 4},
		{from: 5, max: 1, events: "[]", through: 4},
		{from: 6, max: 1, events: "[]", through: 5},            // past the committed revision: from-1
		{from: 1, max: 0, events: "[a@1 b@1 c@1]", through: 1}, // progress whatever the max
		{from: 0, max: 1, wantCompact: true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("from %d max %d", c.from, c.max), func(t *testing.T) {
			evs, through, err := kvtest.ReadEventsAsync(s, c.from, c.max)
			if c.wantCompact {
				if !errors.Is(err, messages.ErrCompacted) {
					t.Fatalf("ReadEvents = %v, want ErrCompacted", err)
				}
				return
			}
			if err != nil || kvtest.EventNames(evs) != c.events || through != c.through {
				t.Fatalf("ReadEvents = %s through %d (%v), want %s through %d", kvtest.EventNames(evs), through, err, c.events, c.through)
			}
		})
	}

	// A reader that goes on from through+1 until it reaches the committed
	// revision passes every event once, in order.
	var all []messages.Event
	for from, n := uint64(1), 0; ; n++ {
		evs, through, err := kvtest.ReadEventsAsync(s, from, 1)
		if err != nil || through < from-1 || n > 10 {
			t.Fatalf("ReadEvents(%d) = through %d, %v", from, through, err)
		}
		all = append(all, evs...)
		if through == 4 {
			break
		}
		from = through + 1
	}
	if got := kvtest.EventNames(all); got != "[a@1 b@1 c@1 a@2 d@4 -b@4]" {
		t.Fatalf("read in chunks: %s", got)
	}
	if e := all[3]; string(e.KV.Value) != "2" || e.KV.Version != 2 || e.KV.CreateRevision != 1 {
		t.Fatalf("the put of a at 2 reads %+v", e.KV)
	}

	// Compaction not yet committed changes nothing for readers; committed,
	// a read from the compacted revision or below fails, saying where the
	// history starts.
	if err := s.CompactHistory(4, DefaultHistoryBytes); err != nil {
		t.Fatal(err)
	}
	if evs, _, err := kvtest.ReadEventsAsync(s, 1, 100); err != nil || len(evs) != 6 {
		t.Fatalf("before the compaction is committed: %s, %v", kvtest.EventNames(evs), err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{1, 2} {
		_, _, err := kvtest.ReadEventsAsync(s, from, 100)
		var ce *messages.CompactedError
		if !errors.As(err, &ce) || ce.Compacted != 2 || ce.Revision != from {
			t.Fatalf("ReadEvents(%d) after compacting through 2: %v, want a CompactedError at 2", from, err)
		}
	}
	// The values passed are copies: they survive the transaction.
	evs, through, err := kvtest.ReadEventsAsync(s, 3, 100)
	if err != nil || through != 6 || kvtest.EventNames(evs) != "[d@4 -b@4 e@6 a@6]" {
		t.Fatalf("after the compaction: %s through %d, %v", kvtest.EventNames(evs), through, err)
	}
	mustPut(t, s, "d", "overwritten", 7)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if string(evs[0].KV.Value) != "1" || string(evs[3].KV.Value) != "3" {
		t.Fatalf("values read changed after their transaction ended: %q %q", evs[0].KV.Value, evs[3].KV.Value)
	}
}

// A state restored whole (Reset, then Load of each key: inline snapshot
// data) knows nothing before its revision: its history is empty and
// starts there, whatever it held before.
func TestResetStartsHistory(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "old", "1", 3)
	mustPut(t, s, "k", "0", 5)
	if err := s.AddMember(1, "http://a:1"); err != nil {
		t.Fatal(err)
	}
	s.SetApplied(5, 1, nil)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	const index = 40
	if err := s.Reset(index); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"k": "v", "j": "w"} {
		if err := s.Load(k, []byte(v), index); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Load("k", []byte("again"), index); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("a key loaded twice: %v, want ErrBadSnapshot", err)
	}
	s.SetApplied(index, 2, nil)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if m := s.meta; m.revision != index || m.compacted != index || m.histEvents != 0 || m.histBytes != 0 {
		t.Fatalf("meta %+v, want revision and compacted %d, no history", m, index)
	}
	if h := historyOf(t, s.be.Tx()); len(h) != 0 {
		t.Fatalf("history after a restore: %v", h)
	}
	if s.Revision() != index || s.Compacted() != index || s.HistoryEvents() != 0 {
		t.Fatalf("Revision %d Compacted %d HistoryEvents %d, want %d, %d, 0", s.Revision(), s.Compacted(), s.HistoryEvents(), index, index)
	}
	if len(s.Members()) != 0 || len(s.TakeEvents()) != 0 {
		t.Fatalf("members %v, events pending after the reset", s.Members())
	}
	if s.Keys() != 2 || s.Used() != Cost("k", []byte("v"))+Cost("j", []byte("w")) {
		t.Fatalf("keys %d used %d after the restore", s.Keys(), s.Used())
	}
	if _, ok := mustGet(t, s, "old"); ok {
		t.Fatal("a key survived the reset")
	}
	if kv := kvOf(t, s, "k"); kv.CreateRevision != index || kv.ModRevision != index || kv.Version != 1 || string(kv.Value) != "v" {
		t.Fatalf("k restored as %+v", kv)
	}
	if evs, through, err := kvtest.ReadEventsAsync(s, index+1, 10); err != nil || len(evs) != 0 || through != index {
		t.Fatalf("ReadEvents(%d) = %s through %d, %v; want nothing, through %d", index+1, kvtest.EventNames(evs), through, err, index)
	}
	if _, _, err := kvtest.ReadEventsAsync(s, index, 10); !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("ReadEvents(%d) = %v, want ErrCompacted", index, err)
	}
	if _, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: index - 1}); !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("a range at %d: %v, want ErrCompacted", index-1, err)
	}
	if res, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: index}); err != nil || len(res.KVs) != 2 {
		t.Fatalf("a range at %d: %+v, %v; want j and k", index, res, err)
	}
}

// TestChangeEncoding pins the history's value layout, which dbs already
// written hold: type | uvarint-framed key | uvarint-framed record written |
// 1 and the previous record, or 0. The encoding is sized exactly (one
// allocation), and decodes to the change it came from.
func TestChangeEncoding(t *testing.T) {
	framed := func(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }
	rec := func(create, mod, version uint64, value string) []byte {
		b := binary.AppendUvarint(nil, create)
		b = binary.AppendUvarint(b, mod)
		b = binary.AppendUvarint(b, version)
		return append(b, value...)
	}
	big := string(make([]byte, 300)) // a value whose length needs a two-byte uvarint
	cases := []struct {
		name string
		ch   change
		want []byte
	}{
		{"put of a new key", change{typ: messages.EventPut, key: "a", cur: record{createRev: 5, modRev: 5, version: 1, value: []byte("v")}},
			slices.Concat([]byte{byte(messages.EventPut)}, framed([]byte("a")), framed(rec(5, 5, 1, "v")), []byte{0})},
		{"put over a key", change{typ: messages.EventPut, key: "key", cur: record{createRev: 3, modRev: 1 << 40, version: 300, value: []byte(big)},
			prev: record{createRev: 3, modRev: 200, version: 299, value: []byte("old")}, existed: true},
			slices.Concat([]byte{byte(messages.EventPut)}, framed([]byte("key")), framed(rec(3, 1<<40, 300, big)), []byte{1}, rec(3, 200, 299, "old"))},
		{"delete", change{typ: messages.EventDelete, key: "\xff\x00", cur: record{modRev: 9},
			prev: record{createRev: 2, modRev: 4, version: 2, value: []byte(big)}, existed: true},
			slices.Concat([]byte{byte(messages.EventDelete)}, framed([]byte("\xff\x00")), framed(rec(0, 9, 0, "")), []byte{1}, rec(2, 4, 2, big))},
		{"put of an empty value", change{typ: messages.EventPut, key: "e", cur: record{createRev: 1, modRev: 1, version: 1, value: []byte{}}},
			slices.Concat([]byte{byte(messages.EventPut)}, framed([]byte("e")), framed(rec(1, 1, 1, "")), []byte{0})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.ch.encode()
			if !slices.Equal(got, c.want) {
				t.Fatalf("encode = %x, want %x", got, c.want)
			}
			if cap(got) != len(got) {
				t.Errorf("encoding of %d bytes in a buffer of %d: the size is miscounted", len(got), cap(got))
			}
			back, err := decodeChange(got)
			if err != nil {
				t.Fatal(err)
			}
			if back.typ != c.ch.typ || back.key != c.ch.key || back.existed != c.ch.existed ||
				!sameRecord(back.cur, c.ch.cur) || (c.ch.existed && !sameRecord(back.prev, c.ch.prev)) {
				t.Errorf("decoded %+v, want %+v", back, c.ch)
			}
		})
	}
}

func sameRecord(a, b record) bool {
	return a.createRev == b.createRev && a.modRev == b.modRev && a.version == b.version && string(a.value) == string(b.value)
}

// mmapSize is how much address space the backend maps (its
// initialMmapSize): a value whose bytes lie in it aliases the db.
const mmapSize = 10 << 30

// Every event carries the key's record before it (Prev), none for a put
// that created the key, alike when the store hands it to the watch hub
// (TakeEvents) and when the history is read back; the previous value is a
// copy, never the db's memory, which is reused once its transaction ends.
func TestEventsCarryPrev(t *testing.T) {
	s := newTestStore(t)
	// Each revision committed on its own, so that the previous records are
	// read from the db's pages, not from what the transaction wrote.
	var live []messages.Event
	commit := func(rev uint64) {
		t.Helper()
		live = append(live, s.TakeEvents()...)
		s.SetApplied(rev, 1, nil)
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// A value too large for the buckets to be stored inline in their
	// parent's page: an inline bucket read in a transaction may be a copy,
	// which would hide a value aliasing the db's pages.
	mustPut(t, s, "filler", strings.Repeat("f", 2048), 1)
	mustPut(t, s, "c", "1", 1)
	commit(1)
	mustPut(t, s, "a", "A", 3)
	mustPut(t, s, "b", "B", 3)
	mustDel(t, s, "c", 3)
	mustDel(t, s, "absent", 3)
	commit(3)
	if _, _, err := s.Txn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "\xffA2"), kvtest.TxnDelRange("b", "c"), kvtest.TxnPut("d", "D")}}, 4, false); err != nil {
		t.Fatal(err)
	}
	commit(4)
	mustPut(t, s, "a", "A3", 5)
	commit(5)
	want := []string{
		`1 filler@1 -`,
		`1 c@1 -`,
		`1 a@3 -`,
		`1 b@3 -`,
		`2 c@3 was "1" c1 m1 v1`,
		`1 a@4 was "A" c3 m3 v1`,
		`2 b@4 was "B" c3 m3 v1`,
		`1 d@4 -`,
		`1 a@5 was "\xffA2" c3 m4 v2`,
	}
	// The db's memory is its mmap, from Info().Data, mmapSize long: a
	// value inside it aliases the db.
	mapped := s.be.Tx().DB().Info().Data
	inDB := func(v []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
		return len(v) > 0 && p >= mapped && p < mapped+mmapSize
	}
	withPrev := func(evs []messages.Event) []string {
		var out []string
		for _, e := range evs {
			s := fmt.Sprintf("%d %s@%d ", e.Type, e.KV.Key, e.Revision())
			switch {
			case e.Prev == nil:
				s += "-"
			case inDB(e.Prev.Value):
				s += "(previous value in the db's memory) "
				fallthrough
			default:
				if e.Prev.Key != e.KV.Key {
					s += fmt.Sprintf("(previous of key %q) ", e.Prev.Key)
				}
				s += fmt.Sprintf("was %q c%d m%d v%d", e.Prev.Value, e.Prev.CreateRevision, e.Prev.ModRevision, e.Prev.Version)
			}
			out = append(out, s)
		}
		return out
	}
	if got := withPrev(live); !slices.Equal(got, want) {
		t.Fatalf("events handed to the hub\n%q\nwant\n%q", got, want)
	}
	read, through, err := kvtest.ReadEventsAsync(s, 1, 100)
	if err != nil || through != 5 {
		t.Fatalf("ReadEvents = through %d, %v", through, err)
	}
	if got := withPrev(read); !slices.Equal(got, want) {
		t.Fatalf("events read from the history\n%q\nwant\n%q", got, want)
	}
}

// Compact drops the history through its revision, whole revisions,
// durably; reads at or after it are served, below it compacted. At or
// below the compacted revision, or past the store's revision, it is
// refused and changes nothing.
func TestCompact(t *testing.T) {
	cases := []struct {
		name       string
		first      uint64 // a compaction before, 0 for none
		rev        uint64
		want       error
		compacted  uint64
		keptRevs   []uint64
		keptEvents int
	}{
		{name: "the oldest revision", rev: 1, compacted: 1, keptRevs: []uint64{2, 3, 4, 5}, keptEvents: 8},
		{name: "through a middle revision", rev: 3, compacted: 3, keptRevs: []uint64{4, 5}, keptEvents: 3},
		{name: "through the store's revision", rev: 5, compacted: 5},
		{name: "past the last one compacted", first: 2, rev: 4, compacted: 4, keptRevs: []uint64{5}, keptEvents: 2},
		{name: "revision 0", rev: 0, want: messages.ErrCompacted, keptRevs: []uint64{1, 2, 3, 4, 5}, keptEvents: 9},
		{name: "again", first: 3, rev: 3, want: messages.ErrCompacted, compacted: 3, keptRevs: []uint64{4, 5}, keptEvents: 3},
		{name: "below the compacted revision", first: 3, rev: 2, want: messages.ErrCompacted, compacted: 3, keptRevs: []uint64{4, 5}, keptEvents: 3},
		{name: "past the store's revision", rev: 6, want: messages.ErrFutureRevision, keptRevs: []uint64{1, 2, 3, 4, 5}, keptEvents: 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := historyFixture(t)
			if c.first != 0 {
				if err := s.Compact(c.first); err != nil {
					t.Fatal(err)
				}
			}
			before := s.meta
			err := s.Compact(c.rev)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Compact(%d) = %v, want %v", c.rev, err, c.want)
			}
			var ce *messages.CompactedError
			if errors.As(err, &ce) && (ce.Revision != c.rev || ce.Compacted != before.compacted) {
				t.Fatalf("Compact(%d) = %+v, want the revision asked for and %d", c.rev, ce, before.compacted)
			}
			if c.want != nil && s.meta != before {
				t.Fatalf("a refused compaction changed the meta data: %+v, was %+v", s.meta, before)
			}
			h := historyOf(t, s.be.Tx())
			var revs []uint64
			for _, e := range h {
				if len(revs) == 0 || revs[len(revs)-1] != e.rev {
					revs = append(revs, e.rev)
				}
			}
			if !slices.Equal(revs, c.keptRevs) || len(h) != c.keptEvents || s.Compacted() != c.compacted {
				t.Fatalf("kept revisions %v (%d events), compacted %d; want %v (%d), %d", revs, len(h), s.Compacted(), c.keptRevs, c.keptEvents, c.compacted)
			}
			checkHistoryCounters(t, s)
			if s.Revision() != 5 {
				t.Fatalf("compaction moved the store revision to %d", s.Revision())
			}
			// Reads: below the compacted revision fails, at it works.
			if s.Compacted() > 1 {
				if _, err := s.Range(messages.Range{Start: "k", End: RangeEndAll, Revision: s.Compacted() - 1}); !errors.As(err, &ce) || ce.Compacted != s.Compacted() {
					t.Fatalf("a read below the compacted revision: %v", err)
				}
			}
			if s.Compacted() > 0 {
				res, err := s.Range(messages.Range{Start: "k", End: RangeEndAll, Revision: s.Compacted()})
				if err != nil {
					t.Fatalf("a read at the compacted revision: %v", err)
				}
				n := 0
				for rev := uint64(1); rev <= s.Compacted(); rev++ {
					n += []int{1, 2, 3, 1, 2}[rev-1]
				}
				if len(res.KVs) != n {
					t.Fatalf("a read at %d holds %d keys, want %d", s.Compacted(), len(res.KVs), n)
				}
			}
			// Durable, and what watchers resuming read from the commit.
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			m, err := committedMeta(s)
			if err != nil || m.compacted != c.compacted || m.histEvents != uint64(c.keptEvents) {
				t.Fatalf("committed meta %+v (%v), want compacted %d with %d events", m, err, c.compacted, c.keptEvents)
			}
			if _, err := s.ReadEvents(c.compacted, 100, func(messages.Event) {}); c.compacted > 0 && !errors.Is(err, messages.ErrCompacted) {
				t.Fatalf("ReadEvents from the compacted revision: %v, want ErrCompacted", err)
			}
			var evs []messages.Event
			if _, err := s.ReadEvents(c.compacted+1, 100, func(e messages.Event) { evs = append(evs, e) }); err != nil || len(evs) != c.keptEvents {
				t.Fatalf("ReadEvents after the compacted revision: %d events, %v; want %d", len(evs), err, c.keptEvents)
			}
		})
	}
}
