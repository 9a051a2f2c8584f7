package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

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
	h, err := historyEntries(tx)
	if err != nil {
		t.Fatalf("reading the history: %v", err)
	}
	return h
}

// historyEntries is historyOf for the kv actor's goroutine, which may not
// call t.Fatal.
func historyEntries(tx *bolt.Tx) ([]histEntry, error) {
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
	return out, err
}

// checkHistoryCounters checks that the meta data counts the history bucket
// as it is.
func checkHistoryCounters(t testing.TB, b *backend) {
	t.Helper()
	h := historyOf(t, b.tx)
	n := 0
	for _, e := range h {
		n += e.bytes
	}
	if b.meta.histEvents != uint64(len(h)) || b.meta.histBytes != uint64(n) {
		t.Fatalf("meta counts %d events, %d bytes; the bucket holds %d, %d", b.meta.histEvents, b.meta.histBytes, len(h), n)
	}
}

// Each change is one event, numbered within its revision in the order the
// entry made it, with the record it replaced.
func TestHistoryRecordsChanges(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "c", "1", 1)
	// A batch entry at 3: several commands.
	for _, c := range []command{
		{op: opPut, key: "a", value: []byte("A")},
		{op: opPut, key: "b", value: []byte("B")},
		{op: opDelete, key: "c"},
		{op: opDelete, key: "absent"}, // changes nothing: no event
		attrsCommand(1, []string{"http://x"}),
	} {
		if _, err := s.apply(c, 3, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction at 4.
	if _, _, err := s.applyTxn(messages.Txn{Success: []messages.TxnOp{txnPut("a", "A2"), txnDelRange("b", "c"), txnPut("d", "D")}}, 4, 0, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range historyOf(t, s.be.tx) {
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
	checkHistoryCounters(t, s.be)
	if s.revision() != 4 {
		t.Fatalf("revision %d, want 4", s.revision())
	}
	// The events handed to the watch hub are the same changes, in order.
	var evs []string
	for _, e := range s.takeEvents() {
		evs = append(evs, fmt.Sprintf("%d %s@%d v%d", e.Type, e.KV.Key, e.Revision(), e.KV.Version))
	}
	if want := "[1 c@1 v1 1 a@3 v1 1 b@3 v1 2 c@3 v0 1 a@4 v2 2 b@4 v0 1 d@4 v1]"; fmt.Sprint(evs) != want {
		t.Fatalf("events %v, want %s", evs, want)
	}
}

// historyFixture is a store whose history holds, at revisions 1 to 5,
// 1, 2, 3, 1 and 2 events, and the size of each revision's events.
func historyFixture(t *testing.T) (*store, map[uint64]uint64) {
	t.Helper()
	s := newTestStore(t)
	for rev, n := range []int{1, 2, 3, 1, 2} {
		for i := range n {
			mustPut(t, s, fmt.Sprintf("k%d-%d", rev+1, i), fmt.Sprintf("value of size %d", (rev+1)*100+i), uint64(rev+1))
		}
	}
	sizes := map[uint64]uint64{}
	for _, e := range historyOf(t, s.be.tx) {
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
			if err := s.be.compactHistory(c.maxEvents, c.maxBytes); err != nil {
				t.Fatal(err)
			}
			h := historyOf(t, s.be.tx)
			var revs []uint64
			for _, e := range h {
				if len(revs) == 0 || revs[len(revs)-1] != e.rev {
					revs = append(revs, e.rev)
				}
			}
			if !slices.Equal(revs, c.keptRevs) || len(h) != c.keptEvents {
				t.Fatalf("kept revisions %v (%d events), want %v (%d)", revs, len(h), c.keptRevs, c.keptEvents)
			}
			if s.be.meta.compacted != c.compacted {
				t.Fatalf("compacted %d, want %d", s.be.meta.compacted, c.compacted)
			}
			checkHistoryCounters(t, s.be)
			if s.revision() != 5 {
				t.Fatalf("compaction moved the store revision to %d", s.revision())
			}
			// The compacted revision is durable with the rest.
			if err := s.be.commit(); err != nil {
				t.Fatal(err)
			}
			m, err := dbMetaOf(s.be)
			if err != nil || m.compacted != c.compacted || m.histEvents != uint64(c.keptEvents) {
				t.Fatalf("committed meta %+v (%v), want compacted %d with %d events", m, err, c.compacted, c.keptEvents)
			}
		})
	}
}

// readEventsAsync calls st.ReadEvents on a goroutine of its own, as the
// watch hub's streams do, and returns what it passed.
func readEventsAsync(st *State, from uint64, maxEvents int) ([]messages.Event, uint64, error) {
	type result struct {
		evs     []messages.Event
		through uint64
		err     error
	}
	done := make(chan result)
	go func() {
		var r result
		r.through, r.err = st.ReadEvents(from, maxEvents, func(e messages.Event) { r.evs = append(r.evs, e) })
		done <- r
	}()
	r := <-done
	return r.evs, r.through, r.err
}

func eventNames(evs []messages.Event) string {
	var out []string
	for _, e := range evs {
		s := fmt.Sprintf("%s@%d", e.KV.Key, e.Revision())
		if e.Type == messages.EventDelete {
			s = "-" + s
		}
		out = append(out, s)
	}
	return fmt.Sprint(out)
}

// ReadEvents reads the committed history, whole revisions at a time, from
// any goroutine, while the state's owner holds uncommitted writes.
func TestStateReadEvents(t *testing.T) {
	st := openTestState(t, FormatNative)
	s := st.st
	mustPut(t, s, "a", "1", 1)
	mustPut(t, s, "b", "1", 1)
	mustPut(t, s, "c", "1", 1)
	mustPut(t, s, "a", "2", 2)
	mustPut(t, s, "d", "1", 4)
	mustDel(t, s, "b", 4)
	st.be.setApplied(5, 1, nil) // 5 changed nothing
	if err := st.be.commit(); err != nil {
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
		{from: 6, max: 1, events: "[]", through: 5}, // past the committed revision: from-1
		{from: 0, max: 1, wantCompact: true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("from %d max %d", c.from, c.max), func(t *testing.T) {
			evs, through, err := readEventsAsync(st, c.from, c.max)
			if c.wantCompact {
				if !errors.Is(err, messages.ErrCompacted) {
					t.Fatalf("ReadEvents = %v, want ErrCompacted", err)
				}
				return
			}
			if err != nil || eventNames(evs) != c.events || through != c.through {
				t.Fatalf("ReadEvents = %s through %d (%v), want %s through %d", eventNames(evs), through, err, c.events, c.through)
			}
		})
	}

	// A reader that goes on from through+1 until it reaches the committed
	// revision passes every event once, in order.
	var all []messages.Event
	for from, n := uint64(1), 0; ; n++ {
		evs, through, err := readEventsAsync(st, from, 1)
		if err != nil || through < from-1 || n > 10 {
			t.Fatalf("ReadEvents(%d) = through %d, %v", from, through, err)
		}
		all = append(all, evs...)
		if through == 4 {
			break
		}
		from = through + 1
	}
	if got := eventNames(all); got != "[a@1 b@1 c@1 a@2 d@4 -b@4]" {
		t.Fatalf("read in chunks: %s", got)
	}
	if e := all[3]; string(e.KV.Value) != "2" || e.KV.Version != 2 || e.KV.CreateRevision != 1 {
		t.Fatalf("the put of a at 2 reads %+v", e.KV)
	}

	// Compaction not yet committed changes nothing for readers; committed,
	// a read from the compacted revision or below fails, saying where the
	// history starts.
	if err := st.be.compactHistory(4, DefaultHistoryBytes); err != nil {
		t.Fatal(err)
	}
	if evs, _, err := readEventsAsync(st, 1, 100); err != nil || len(evs) != 6 {
		t.Fatalf("before the compaction is committed: %s, %v", eventNames(evs), err)
	}
	if err := st.be.commit(); err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{1, 2} {
		_, _, err := readEventsAsync(st, from, 100)
		var ce *messages.CompactedError
		if !errors.As(err, &ce) || ce.Compacted != 2 || ce.Revision != from {
			t.Fatalf("ReadEvents(%d) after compacting through 2: %v, want a CompactedError at 2", from, err)
		}
	}
	// The values passed are copies: they survive the transaction.
	evs, through, err := readEventsAsync(st, 3, 100)
	if err != nil || through != 6 || eventNames(evs) != "[d@4 -b@4 e@6 a@6]" {
		t.Fatalf("after the compaction: %s through %d, %v", eventNames(evs), through, err)
	}
	mustPut(t, s, "d", "overwritten", 7)
	if err := st.be.commit(); err != nil {
		t.Fatal(err)
	}
	if string(evs[0].KV.Value) != "1" || string(evs[3].KV.Value) != "3" {
		t.Fatalf("values read changed after their transaction ended: %q %q", evs[0].KV.Value, evs[3].KV.Value)
	}
}

// A state restored from inline snapshot data (a data dir of the previous
// layout, raftexample's JSON) knows nothing before the snapshot: its
// history is empty and starts there.
func TestInlineSnapshotResetsHistory(t *testing.T) {
	legacy := legacySnapshot(t, map[uint64]string{1: "http://a:1"}, nil, map[string]string{"k": "v", "j": "w"})
	for _, c := range []struct {
		name   string
		format Format
		data   []byte
	}{
		{"previous layout", FormatNative, legacy},
		{"raftexample", FormatRaftexample, []byte(`{"k":"v","j":"w"}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			snap := &raftpb.Snapshot{Data: c.data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(40)), Term: new(uint64(2)), ConfState: confState([]uint64{1}, nil)}}
			st, err := OpenState(testStateConfig(t.TempDir(), c.format, snap))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			checkRestoredHistory(t, st, 40)
		})
	}
}

// checkRestoredHistory checks a state restored whole at index: revision and
// compacted revision at index, no event, every key written at index.
func checkRestoredHistory(t *testing.T, st *State, index uint64) {
	t.Helper()
	if err := restoredHistoryErr(st, index); err != nil {
		t.Fatal(err)
	}
}

// restoredHistoryErr is checkRestoredHistory for the kv actor's goroutine.
func restoredHistoryErr(st *State, index uint64) error {
	if m := st.be.meta; m.revision != index || m.compacted != index || m.histEvents != 0 || m.histBytes != 0 {
		return fmt.Errorf("meta %+v, want revision and compacted %d, no history", m, index)
	}
	if h, err := historyEntries(st.be.tx); err != nil || len(h) != 0 {
		return fmt.Errorf("history after a restore: %v (%v)", h, err)
	}
	if st.Revision() != index {
		return fmt.Errorf("Revision() = %d, want %d", st.Revision(), index)
	}
	if kv, ok, err := st.st.get("k"); err != nil || !ok || kv.CreateRevision != index || kv.ModRevision != index || kv.Version != 1 || string(kv.Value) != "v" {
		return fmt.Errorf("k restored as %+v (%v, %v)", kv, ok, err)
	}
	if evs, through, err := readEventsAsync(st, index+1, 10); err != nil || len(evs) != 0 || through != index {
		return fmt.Errorf("ReadEvents(%d) = %s through %d, %v; want nothing, through %d", index+1, eventNames(evs), through, err, index)
	}
	if _, _, err := readEventsAsync(st, index, 10); !errors.Is(err, messages.ErrCompacted) {
		return fmt.Errorf("ReadEvents(%d) = %v, want ErrCompacted", index, err)
	}
	if _, err := st.be.readRange(messages.Range{Start: "a", End: rangeEndAll, Revision: index - 1}); !errors.Is(err, messages.ErrCompacted) {
		return fmt.Errorf("a range at %d: %v, want ErrCompacted", index-1, err)
	}
	if res, err := st.be.readRange(messages.Range{Start: "a", End: rangeEndAll, Revision: index}); err != nil || len(res.KVs) != 2 {
		return fmt.Errorf("a range at %d: %+v, %v; want j and k", index, res, err)
	}
	return nil
}

// downgradeToV1 makes the db at path what the previous layout wrote: its
// layout key, no history bucket, no revision or history counters.
func downgradeToV1(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{metaRevision, metaCompacted, metaHistEvents, metaHistBytes} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		if err := meta.Put(metaLayout, []byte(layoutV1)); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketHistory)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// rawLayout reads a closed db's layout key and whether it has a history.
func rawLayout(t *testing.T, path string) (string, bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var layout string
	var hist bool
	_ = db.View(func(tx *bolt.Tx) error {
		layout = string(tx.Bucket(bucketMeta).Get(metaLayout))
		hist = tx.Bucket(bucketHistory) != nil
		return nil
	})
	return layout, hist
}

// A db of the previous layout ("raftkv-1": no history, no revision) is
// accepted as a received snapshot db, and upgraded when opened for
// writing: its revision and compacted revision are its applied index, and
// its history starts there.
func TestLayoutV1Upgrade(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DBFile)
	st, err := OpenState(testStateConfig(dir, FormatNative, nil))
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, st.st, "a", "1", 3)
	mustPut(t, st.st, "b", "2", 7)
	st.be.setApplied(10, 1, confState([]uint64{1}, nil))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	downgradeToV1(t, path)

	// Read-only, as a received snapshot db is checked: accepted as it is.
	if err := checkSnapshotDB(path, 10); err != nil {
		t.Fatalf("checkSnapshotDB of a raftkv-1 db: %v", err)
	}
	if err := checkSnapshotDB(path, 11); !errors.Is(err, ErrSnapshotDB) {
		t.Fatalf("checkSnapshotDB of a raftkv-1 db older than its snapshot: %v", err)
	}
	db, err := openDB(path, true)
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		m, err := readMeta(tx, false)
		if err != nil {
			return err
		}
		if m.applied != 10 || m.revision != 10 || m.compacted != 10 || m.keys != 2 {
			return fmt.Errorf("meta %+v, want applied, revision and compacted 10, 2 keys", m)
		}
		return nil
	})
	_ = db.Close()
	if err != nil {
		t.Fatalf("readMeta of a raftkv-1 db: %v", err)
	}
	if layout, hist := rawLayout(t, path); layout != layoutV1 || hist {
		t.Fatalf("a read-only check changed the db: layout %q, history %v", layout, hist)
	}

	// Opened for writing: upgraded.
	st, err = OpenState(testStateConfig(dir, FormatNative, nil))
	if err != nil {
		t.Fatalf("OpenState of a raftkv-1 db: %v", err)
	}
	if m := st.be.meta; m.revision != 10 || m.compacted != 10 || m.applied != 10 || m.keys != 2 {
		t.Fatalf("meta after the upgrade %+v", m)
	}
	if st.be.tx.Bucket(bucketHistory) == nil {
		t.Fatal("no history bucket after the upgrade")
	}
	if kv := kvOf(t, st.st, "b"); kv.ModRevision != 7 || kv.Version != 1 {
		t.Fatalf("b after the upgrade: %+v", kv)
	}
	// Before the upgrade is committed a reader sees the old layout, which
	// has no history: reads from after its revision find nothing.
	if evs, through, err := readEventsAsync(st, 11, 10); err != nil || len(evs) != 0 || through != 10 {
		t.Fatalf("ReadEvents(11) of the raftkv-1 db = %s through %d, %v; want nothing through 10", eventNames(evs), through, err)
	}
	if _, _, err := readEventsAsync(st, 10, 10); !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("ReadEvents(10) of the raftkv-1 db = %v, want ErrCompacted", err)
	}
	if _, err := st.be.readRange(messages.Range{Start: "a", End: rangeEndAll, Revision: 9}); !errors.Is(err, messages.ErrCompacted) {
		t.Fatalf("a range at 9: %v, want ErrCompacted", err)
	}
	if res, err := st.be.readRange(messages.Range{Start: "a", End: rangeEndAll, Revision: 10}); err != nil || len(res.KVs) != 2 {
		t.Fatalf("a range at 10: %+v %v", res, err)
	}
	// Writes after it have a history.
	mustPut(t, st.st, "a", "new", 11)
	st.be.setApplied(11, 1, nil)
	if err := st.be.commit(); err != nil {
		t.Fatal(err)
	}
	if evs, through, err := readEventsAsync(st, 11, 10); err != nil || eventNames(evs) != "[a@11]" || through != 11 {
		t.Fatalf("ReadEvents(11) after a write = %s through %d, %v", eventNames(evs), through, err)
	}
	if res, err := st.be.readRange(messages.Range{Start: "a", Revision: 10}); err != nil || len(res.KVs) != 1 || string(res.KVs[0].Value) != "1" {
		t.Fatalf("a at 10 after the write at 11: %+v %v", res, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if layout, hist := rawLayout(t, path); layout != layoutVersion || !hist {
		t.Fatalf("after the upgrade: layout %q, history %v; want %q with a history", layout, hist, layoutVersion)
	}
	st, err = OpenState(testStateConfig(dir, FormatNative, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if m := st.be.meta; m.revision != 11 || m.compacted != 10 || m.histEvents != 1 {
		t.Fatalf("reopened after the upgrade: meta %+v", m)
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

// Every event carries the key's record before it (Prev), none for a put
// that created the key, alike when the kv actor hands it to the watch hub
// and when the history is read back; the previous value is a copy, never
// the db's memory, which is reused once its transaction ends.
func TestEventsCarryPrev(t *testing.T) {
	st := openTestState(t, FormatNative)
	s := st.st
	// Each revision committed on its own, so that the previous records are
	// read from the db's pages, not from what the transaction wrote.
	var live []messages.Event
	commit := func(rev uint64) {
		t.Helper()
		live = append(live, s.takeEvents()...)
		st.be.setApplied(rev, 1, nil)
		if err := st.be.commit(); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s, "c", "1", 1)
	commit(1)
	for _, c := range []command{
		{op: opPut, key: "a", value: []byte("A")},
		{op: opPut, key: "b", value: []byte("B")},
		{op: opDelete, key: "c"},
		{op: opDelete, key: "absent"},
	} {
		if _, err := s.apply(c, 3, 0); err != nil {
			t.Fatal(err)
		}
	}
	commit(3)
	if _, _, err := s.applyTxn(messages.Txn{Success: []messages.TxnOp{txnPut("a", "\xffA2"), txnDelRange("b", "c"), txnPut("d", "D")}}, 4, 0, false); err != nil {
		t.Fatal(err)
	}
	commit(4)
	mustPut(t, s, "a", "A3", 5)
	commit(5)
	want := []string{
		`1 c@1 -`,
		`1 a@3 -`,
		`1 b@3 -`,
		`2 c@3 was "1" c1 m1 v1`,
		`1 a@4 was "A" c3 m3 v1`,
		`2 b@4 was "B" c3 m3 v1`,
		`1 d@4 -`,
		`1 a@5 was "\xffA2" c3 m4 v2`,
	}
	// The db's memory is its mmap, from Info().Data, initialMmapSize long
	// at least: a value inside it aliases the db.
	mapped := st.be.db.Info().Data
	inDB := func(v []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
		return len(v) > 0 && p >= mapped && p < mapped+initialMmapSize
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
	read, through, err := readEventsAsync(st, 1, 100)
	if err != nil || through != 5 {
		t.Fatalf("ReadEvents = through %d, %v", through, err)
	}
	if got := withPrev(read); !slices.Equal(got, want) {
		t.Fatalf("events read from the history\n%q\nwant\n%q", got, want)
	}
}
