package apply

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// compactData is the native data of a compaction through rev, proposed
// under reqID.
func compactData(reqID, rev uint64) []byte {
	c := compactCommand(rev)
	c.ReqID = reqID
	return c.encode()
}

// A compaction is OpCompact, no key, its revision as value: it round
// trips alone and in a batch, and has one encoding.
func TestCompactCommandRoundTrip(t *testing.T) {
	if got := hex.EncodeToString(compactData(300, 300)); got != "0aac0200ac02" {
		t.Fatalf("a compaction encodes as %s", got)
	}
	for _, rev := range []uint64{1, 127, 128, 1 << 40, math.MaxUint64} {
		data := compactData(77, rev)
		c, err := decodeCommand(data)
		if err != nil || c.Op != OpCompact || c.ReqID != 77 || c.Key != "" {
			t.Fatalf("rev %d: decodeCommand = %+v, %v", rev, c, err)
		}
		if got, err := decodeCompact(c); err != nil || got != rev {
			t.Fatalf("rev %d: decodeCompact = %d, %v", rev, got, err)
		}
		if again := c.encode(); !bytes.Equal(again, data) {
			t.Fatalf("rev %d: re-encoding differs: %x, want %x", rev, again, data)
		}
		if err := ValidEntry(nativeFormat{}, EncodeBatch(3, [][]byte{data, data}, 2*len(data))); err != nil {
			t.Fatalf("rev %d: ValidEntry of a batch: %v", rev, err)
		}
	}
}

// A compaction encode never writes does not decode: every member refuses
// it alike, and the raft actor turns away a peer's proposal of one.
func TestDecodeCompactMalformed(t *testing.T) {
	cmd := func(key string, value []byte) []byte {
		return Command{Op: OpCompact, ReqID: 1, Key: key, Value: value}.encode()
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"no revision", cmd("", nil)},
		{"revision 0", cmd("", []byte{0})},
		{"revision spelt long", cmd("", []byte{0x81, 0x00})},
		{"revision cut short", cmd("", []byte{0x80})},
		{"revision past 64 bits", cmd("", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})},
		{"trailing bytes", cmd("", []byte{5, 0})},
		{"a key", cmd("k", []byte{5})},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, err := decodeCommand(c.data); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeCommand(%x) = %+v, %v; want ErrBadCommand", c.data, got, err)
			}
			if err := ValidEntry(nativeFormat{}, c.data); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("ValidEntry(%x) = %v, want ErrBadCommand", c.data, err)
			}
			// Applied, it is refused: nothing compacted.
			st := tmpStore(t)
			putAt(t, st, "a", "1", 1)
			putAt(t, st, "a", "2", 2)
			o := outcomeOf(t, newApplier(t, st, FormatNative, 0), 3, c.data, 1, waitAll)
			if !errors.Is(o.Err, messages.ErrEntryRefused) || st.Compacted() != 0 || st.HistoryEvents() != 2 {
				t.Fatalf("applied: %v, compacted %d with %d events; want ErrEntryRefused and nothing compacted", o.Err, st.Compacted(), st.HistoryEvents())
			}
		})
	}
}

// Before it is proposed, a compaction at or below the member's compacted
// revision is refused as applying it would refuse it; revision 0 always.
// The raftexample format has none.
func TestProposeCompact(t *testing.T) {
	for _, c := range []struct {
		rev, compacted uint64
		refused        bool
	}{
		{0, 0, true},
		{1, 0, false},
		{5, 5, true},
		{4, 5, true},
		{6, 5, false},
		{math.MaxUint64, 5, false},
	} {
		cmd, err := ProposeCompact(c.rev, c.compacted)
		if c.refused {
			var ce *messages.CompactedError
			if !errors.Is(err, messages.ErrCompacted) || !errors.As(err, &ce) || ce.Revision != c.rev || ce.Compacted != c.compacted {
				t.Errorf("ProposeCompact(%d, %d) = %v, want a CompactedError", c.rev, c.compacted, err)
			}
			continue
		}
		if err != nil || cmd.Op != OpCompact || cmd.Key != "" {
			t.Errorf("ProposeCompact(%d, %d) = %+v, %v", c.rev, c.compacted, cmd, err)
			continue
		}
		if got, err := decodeCompact(cmd); err != nil || got != c.rev {
			t.Errorf("ProposeCompact(%d, %d) holds revision %d, %v", c.rev, c.compacted, got, err)
		}
	}
	cmd, err := ProposeCompact(3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := (raftexampleFormat{}).Encode(cmd); !errors.Is(err, messages.ErrUnsupported) || data != nil {
		t.Fatalf("raftexample encodes a compaction as %x, %v; want ErrUnsupported", data, err)
	}
}

// Applied, a compaction drops the history through its revision: a read
// below it fails with a CompactedError, one at it works. Compacting at or
// below the compacted revision is ErrCompacted, past the store's revision
// ErrFutureRevision: the client's failures, decided by the state, which
// change nothing.
func TestApplyCompact(t *testing.T) {
	st := tmpStore(t)
	for rev := uint64(1); rev <= 5; rev++ {
		putAt(t, st, "k", string(rune('0'+rev)), rev)
	}
	st.SetApplied(5, 1, nil)
	ap := newApplier(t, st, FormatNative, 0)
	reqID := uint64(0)
	compact := func(idx, rev uint64) Outcome {
		t.Helper()
		reqID++
		return outcomeOf(t, ap, idx, compactData(reqID, rev), reqID, waitAll)
	}
	read := func(rev uint64) (string, error) {
		t.Helper()
		res, err := st.Range(messages.Range{Start: "k", Revision: rev})
		if err != nil {
			return "", err
		}
		return string(res.KVs[0].Value), nil
	}

	if o := compact(6, 3); o.Err != nil || o.Result.Revision != 5 || o.Result.Index != 6 {
		t.Fatalf("compaction at 3: %+v, want success with the store's revision 5 at index 6", o)
	}
	if st.Compacted() != 3 || st.HistoryEvents() != 2 {
		t.Fatalf("compacted %d with %d events, want 3 and 2", st.Compacted(), st.HistoryEvents())
	}
	var ce *messages.CompactedError
	if _, err := read(2); !errors.As(err, &ce) || ce.Revision != 2 || ce.Compacted != 3 {
		t.Fatalf("read at 2: %v, want a CompactedError", err)
	}
	if v, err := read(3); err != nil || v != "3" {
		t.Fatalf("read at 3 = %q, %v; want 3", v, err)
	}

	for _, c := range []struct {
		name string
		rev  uint64
		want error
	}{
		{"again", 3, messages.ErrCompacted},
		{"below", 2, messages.ErrCompacted},
		{"past the store's revision", 6, messages.ErrFutureRevision},
		{"far past it", math.MaxUint64, messages.ErrFutureRevision},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := metaOf(st)
			o := compact(7, c.rev)
			if !errors.Is(o.Err, c.want) || errors.Is(o.Err, messages.ErrEntryRefused) {
				t.Fatalf("compaction at %d: %v, want %v", c.rev, o.Err, c.want)
			}
			if metaOf(st) != before {
				t.Fatalf("a refused compaction changed %+v into %+v", before, metaOf(st))
			}
		})
	}
	// At the store's revision: every event goes, reads at it work.
	if o := compact(8, 5); o.Err != nil || st.Compacted() != 5 || st.HistoryEvents() != 0 {
		t.Fatalf("compaction at the store's revision: %v, compacted %d with %d events", o.Err, st.Compacted(), st.HistoryEvents())
	}
	if v, err := read(5); err != nil || v != "5" {
		t.Fatalf("read at 5 = %q, %v", v, err)
	}
	// Replayed (the db holds it already), its outcome is not proven: no
	// answer.
	if res, err := ap.Replay(entryAt(8, compactData(99, 5))); err != nil || len(res.Outcomes) != 0 {
		t.Fatalf("replay = %+v, %v; want no answer", res, err)
	}
}

// Members group entries into applies differently, and their owners
// compact the history by size between applies: a compaction entry is
// decided alike all the same. Member a compacts by size after every entry
// (its applies hold one each); member b only at the end (one apply of
// every entry). Without the applier compacting by size first, a would
// answer the compaction at 2 ErrCompacted (it dropped revision 2 already)
// and b would compact.
func TestCompactDecidedAlike(t *testing.T) {
	const bound = 2 // history events
	type member struct {
		st *store.Store
		ap *Applier
	}
	newMember := func() member {
		st := tmpStore(t)
		ap, err := New(Config{Store: st, HistoryEvents: bound})
		if err != nil {
			t.Fatal(err)
		}
		return member{st, ap}
	}
	a, b := newMember(), newMember()
	entries := [][]byte{putData(1, "k", "1"), putData(2, "k", "2"), putData(3, "k", "3"), putData(4, "k", "4"), compactData(5, 2), compactData(6, 3), compactData(7, 9)}
	answers := map[string][]error{}
	for name, m := range map[string]member{"a": a, "b": b} {
		for i, data := range entries {
			res, err := m.ap.Apply(entryAt(uint64(i+1), data), waitAll)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range res.Outcomes {
				if o.ReqID >= 5 {
					answers[name] = append(answers[name], o.Err)
				}
			}
			if name == "a" {
				if err := m.st.CompactHistory(bound, store.DefaultHistoryBytes); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := m.st.CompactHistory(bound, store.DefaultHistoryBytes); err != nil {
			t.Fatal(err)
		}
	}
	for i := range answers["a"] {
		ea, eb := answers["a"][i], answers["b"][i]
		if (ea == nil) != (eb == nil) || (ea != nil && ea.Error() != eb.Error()) {
			t.Fatalf("compaction %d answered %v on a, %v on b", i, ea, eb)
		}
	}
	if errs := answers["a"]; len(errs) != 3 || !errors.Is(errs[0], messages.ErrCompacted) || errs[1] != nil || !errors.Is(errs[2], messages.ErrFutureRevision) {
		t.Fatalf("answers %v, want compacted (by size already), done, future", errs)
	}
	if a.st.Compacted() != b.st.Compacted() || a.st.HistoryEvents() != b.st.HistoryEvents() {
		t.Fatalf("a compacted %d (%d events), b %d (%d)", a.st.Compacted(), a.st.HistoryEvents(), b.st.Compacted(), b.st.HistoryEvents())
	}
}
