package store

import (
	"path/filepath"
	"testing"

	"github.com/raftkv/node/kv/reqid"
)

// rid is the request id of counter n of proposer prefix p.
func rid(p, n uint64) uint64 { return p<<reqid.SuffixBits | n&reqid.SuffixMask }

type dedupStep struct {
	what  string
	id    uint64
	first bool
}

// firstApplies runs the rule on ids in order and checks what it decides.
func firstApplies(t *testing.T, s *Store, steps []dedupStep) {
	t.Helper()
	for i, st := range steps {
		got, err := s.FirstApply(st.id)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, st.what, err)
		}
		if got != st.first {
			t.Fatalf("step %d (%s): id %#x applied %v, want %v", i, st.what, st.id, got, st.first)
		}
	}
}

// The rule: an id is applied the first time it comes within the window
// behind its proposer's furthest id, never again, and never once it is
// dedupWindow or more behind; proposers do not mix.
func TestDedupRule(t *testing.T) {
	s := newTestStore(t)
	const base = 1000
	firstApplies(t, s, []dedupStep{
		{"first id", rid(1, base), true},
		{"its copy", rid(1, base), false},
		{"a later id", rid(1, base+5), true},
		{"an earlier id not applied yet", rid(1, base+3), true},
		{"its copy", rid(1, base+3), false},
		{"the later one's copy", rid(1, base+5), false},
		{"another proposer, same counter", rid(2, base), true},
		{"its copy", rid(2, base), false},
		{"far ahead", rid(1, base+dedupWindow+100), true},
		{"a copy now too old", rid(1, base), false},
		{"an id never applied, too old", rid(1, base+1), false},
		{"exactly the window behind, never applied", rid(1, base+100), false},
		{"the oldest id still in the window, never applied", rid(1, base+101), true},
		{"its copy", rid(1, base+101), false},
		{"the other proposer is not moved", rid(2, base+1), true},
	})
	// hi_P is the furthest id applied, per proposer, as a full request id.
	for _, c := range []struct {
		member, want uint64
	}{
		{1, rid(1, base+dedupWindow+100)},
		{2, rid(2, base+1)},
		{1<<16 | 2, rid(2, base+1)}, // the prefix is the id's low 16 bits
	} {
		if got, ok := s.DedupHigh(c.member); !ok || got != c.want {
			t.Fatalf("DedupHigh(%#x) = %#x %v, want %#x", c.member, got, ok, c.want)
		}
	}
	if _, ok := s.DedupHigh(3); ok {
		t.Fatal("DedupHigh of a proposer with no record")
	}
}

// Counters wrap at 2^48: an id past the wrap is ahead, not far behind.
func TestDedupRuleWraps(t *testing.T) {
	s := newTestStore(t)
	top := uint64(reqid.SuffixMask)
	firstApplies(t, s, []dedupStep{
		{"just before the wrap", rid(3, top-10), true},
		{"past the wrap", rid(3, 5), true},
		{"the one before the wrap, again", rid(3, top-10), false},
		{"before the wrap, in the window, never applied", rid(3, top-20), true},
		{"the one past the wrap, again", rid(3, 5), false},
		{"a window past the wrap", rid(3, 5+dedupWindow), true},
		{"before the wrap, now too old", rid(3, top-30), false},
	})
	if n := dedupKeys(t, s, 3); n > dedupWindow>>dedupBlockBits+2 {
		t.Fatalf("%d dedup keys for one proposer, want at most the window's blocks", n)
	}
}

// dedupKeys counts the dedup bucket's keys of prefix p: its hi record and
// its blocks.
func dedupKeys(t *testing.T, s *Store, p uint64) int {
	t.Helper()
	bk := s.be.Tx().Bucket(bucketDedup)
	if bk == nil {
		return 0
	}
	n := 0
	err := bk.ForEach(func(k, _ []byte) error {
		if len(k) >= 2 && uint64(k[0])<<8|uint64(k[1]) == p {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The records of one proposer stay within the window's blocks however many
// ids it makes.
func TestDedupRecordsBounded(t *testing.T) {
	s := newTestStore(t)
	const step = 1 << dedupBlockBits // one id a block: the most blocks per id
	for n := uint64(0); n < 4*dedupWindow; n += step {
		if first, err := s.FirstApply(rid(5, n)); err != nil || !first {
			t.Fatalf("id %d: first %v, err %v", n, first, err)
		}
	}
	want := dedupWindow>>dedupBlockBits + 2 // the blocks the window spans, and hi
	if n := dedupKeys(t, s, 5); n > want {
		t.Fatalf("%d dedup keys, want at most %d", n, want)
	}
	// Nothing of what was pruned comes back.
	if first, err := s.FirstApply(rid(5, 0)); err != nil || first {
		t.Fatalf("a pruned id: first %v, err %v; want skipped", first, err)
	}
}

// The records are part of the state: committed with it, they are there
// after a restart, and in a copy of the db as a follower receives it.
func TestDedupRecordsDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	firstApplies(t, s, []dedupStep{{"first", rid(1, 7), true}, {"second", rid(1, 9), true}})
	s.SetApplied(1, 1, nil)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "db")
	rc, held, err := s.SnapshotReader()
	if err != nil {
		t.Fatal(err)
	}
	if err := ReceiveSnapshotDB(copyPath, 1, rc); err != nil {
		t.Fatalf("ReceiveSnapshotDB: %v", err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if held != 1 {
		t.Fatalf("the db streamed holds %d, want 1", held)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, copyPath} {
		s, _, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if hi, ok := s.DedupHigh(1); !ok || hi != rid(1, 9) {
			t.Fatalf("%s: DedupHigh(1) = %#x %v, want %#x", p, hi, ok, rid(1, 9))
		}
		firstApplies(t, s, []dedupStep{
			{"first, again", rid(1, 7), false},
			{"second, again", rid(1, 9), false},
			{"between, never applied", rid(1, 8), true},
		})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// The bucket's layout: a new db has it, one of an older build that lacks
// it gets it with the first id, and a reset (twice is harmless) forgets
// every record.
func TestDedupBucketLayout(t *testing.T) {
	s := newTestStore(t)
	if s.be.Tx().Bucket(bucketDedup) == nil {
		t.Fatal("a new db has no dedup bucket")
	}
	firstApplies(t, s, []dedupStep{{"first", rid(1, 7), true}})
	for range 2 {
		if err := resetDedup(s.be.Tx()); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.DedupHigh(1); ok {
		t.Fatal("a record survived the reset")
	}
	// With no bucket (after the reset, or in a db of an older build), the
	// first id makes it.
	if s.be.Tx().Bucket(bucketDedup) != nil {
		t.Fatal("the reset left the bucket")
	}
	firstApplies(t, s, []dedupStep{{"first, after the reset", rid(1, 7), true}, {"its copy", rid(1, 7), false}})
	if hi, ok := s.DedupHigh(1); !ok || hi != rid(1, 7) {
		t.Fatalf("DedupHigh(1) after the reset = %#x %v, want %#x", hi, ok, rid(1, 7))
	}

	// Reset resets the records with the state they describe.
	if err := s.Reset(10); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.DedupHigh(1); ok {
		t.Fatal("a record survived Reset")
	}
	firstApplies(t, s, []dedupStep{{"first, after Reset", rid(1, 7), true}})

	// A db committed without the bucket, as an older build wrote it, opens
	// and takes ids.
	if err := resetDedup(s.be.Tx()); err != nil {
		t.Fatal(err)
	}
	path := s.be.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path)
	if s.be.Tx().Bucket(bucketDedup) != nil {
		t.Fatal("opening a db without a dedup bucket made one")
	}
	firstApplies(t, s, []dedupStep{{"first, in a db without the bucket", rid(1, 7), true}, {"its copy", rid(1, 7), false}})
}
