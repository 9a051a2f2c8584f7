package kv

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftkv/node/messages"
)

// rid is the request id of counter n of proposer prefix p.
func rid(p, n uint64) uint64 { return p<<reqIDSuffixBits | n&reqIDSuffixMask }

// firstApplies runs the rule on ids in order and checks what it decides.
func firstApplies(t *testing.T, b *backend, steps []dedupStep) {
	t.Helper()
	for i, s := range steps {
		got, err := b.firstApply(s.id)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.what, err)
		}
		if got != s.first {
			t.Fatalf("step %d (%s): id %#x applied %v, want %v", i, s.what, s.id, got, s.first)
		}
	}
}

type dedupStep struct {
	what  string
	id    uint64
	first bool
}

// The rule: an id is applied the first time it comes within the window
// behind its proposer's furthest id, never again, and never once it is
// dedupWindow or more behind; proposers do not mix.
func TestDedupRule(t *testing.T) {
	b := openTestState(t, FormatNative).be
	const base = 1000
	firstApplies(t, b, []dedupStep{
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
		{"the oldest id still in the window, never applied", rid(1, base+101), true},
		{"its copy", rid(1, base+101), false},
		{"the other proposer is not moved", rid(2, base+1), true},
	})
}

// Counters wrap at 2^48: an id past the wrap is ahead, not far behind.
func TestDedupRuleWraps(t *testing.T) {
	b := openTestState(t, FormatNative).be
	top := uint64(reqIDSuffixMask)
	firstApplies(t, b, []dedupStep{
		{"just before the wrap", rid(3, top-10), true},
		{"past the wrap", rid(3, 5), true},
		{"the one before the wrap, again", rid(3, top-10), false},
		{"before the wrap, in the window, never applied", rid(3, top-20), true},
		{"the one past the wrap, again", rid(3, 5), false},
		{"a window past the wrap", rid(3, 5+dedupWindow), true},
		{"before the wrap, now too old", rid(3, top-30), false},
	})
	if n := dedupKeys(t, b, 3); n > dedupWindow>>dedupBlockBits+2 {
		t.Fatalf("%d dedup keys for one proposer, want at most the window's blocks", n)
	}
}

// dedupKeys counts the dedup bucket's keys of prefix p: its hi record and
// its blocks.
func dedupKeys(t *testing.T, b *backend, p uint64) int {
	t.Helper()
	bk := b.tx.Bucket(bucketDedup)
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
	b := openTestState(t, FormatNative).be
	const step = 1 << dedupBlockBits // one id a block: the most blocks per id
	for n := uint64(0); n < 4*dedupWindow; n += step {
		if first, err := b.firstApply(rid(5, n)); err != nil || !first {
			t.Fatalf("id %d: first %v, err %v", n, first, err)
		}
	}
	want := dedupWindow>>dedupBlockBits + 2 // the blocks the window spans, and hi
	if n := dedupKeys(t, b, 5); n > want {
		t.Fatalf("%d dedup keys, want at most %d", n, want)
	}
	// Nothing of what was pruned comes back.
	if first, err := b.firstApply(rid(5, 0)); err != nil || first {
		t.Fatalf("a pruned id: first %v, err %v; want skipped", first, err)
	}
}

// The records are part of the state: committed with it, they are there
// after a restart, and in a copy of the db as a follower receives it.
func TestDedupRecordsDurable(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenState(testStateConfig(dir, FormatNative, nil))
	if err != nil {
		t.Fatal(err)
	}
	firstApplies(t, st.be, []dedupStep{{"first", rid(1, 7), true}, {"second", rid(1, 9), true}})
	st.be.setApplied(1, 1, nil)
	if err := st.be.commit(); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), DBFile)
	if held := streamDB(t, st, copyPath, 1); held != 1 {
		t.Fatalf("the db streamed holds %d, want 1", held)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, DBFile), copyPath} {
		st, err := OpenState(testStateConfig(filepath.Dir(path), FormatNative, nil))
		if err != nil {
			t.Fatal(err)
		}
		firstApplies(t, st.be, []dedupStep{
			{"first, again", rid(1, 7), false},
			{"second, again", rid(1, 9), false},
			{"between, never applied", rid(1, 8), true},
		})
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReqIDSkipPast(t *testing.T) {
	now := time.Now()
	start := newReqIDGen(1, now)
	ahead := (start.next + 1000) & reqIDSuffixMask
	cases := []struct {
		name string
		next uint64 // the counter before
		id   uint64
		want uint64 // the next id made
	}{
		{"ahead", start.next, rid(1, ahead), rid(1, ahead+1)},
		{"behind", start.next, rid(1, start.next-1000), rid(1, start.next+1)},
		{"another member's", start.next, rid(2, ahead), rid(1, start.next+1)},
		{"ahead past the wrap", reqIDSuffixMask - 5, rid(1, 3), rid(1, 4)},
		{"behind across the wrap", 3, rid(1, reqIDSuffixMask-5), rid(1, 4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &reqIDGen{prefix: start.prefix, next: c.next}
			g.skipPast(c.id)
			if got := g.id(); got != c.want {
				t.Fatalf("next id %#x, want %#x", got, c.want)
			}
		})
	}
}

// digest is the actor's digest of its key-value state.
func (f *fixture) digest(t *testing.T) messages.Digest {
	t.Helper()
	res, err := f.system.Root.RequestFuture(f.pid, messages.DigestRequest{}, waitFor).Result()
	if err != nil {
		t.Fatalf("DigestRequest: %v", err)
	}
	d, ok := res.(messages.Digest)
	if !ok {
		t.Fatalf("DigestRequest answered %T %v", res, res)
	}
	return d
}

// keyRecord is a key as a serializable Get reads it, revisions included.
func (f *fixture) keyRecord(t *testing.T, key string) messages.KV {
	t.Helper()
	r := f.request(messages.Get{Key: key, Serializable: true}).result(t)
	if r.Err != nil {
		t.Fatalf("Get %q: %v", key, r.Err)
	}
	return r.KV
}

// A command the log holds twice is applied once: the second copy changes
// no key, no revision and no digest, and answers no one. The state equals
// that of a member whose log held nothing in the copy's place.
func TestActorAppliesACommandOnce(t *testing.T) {
	put := func(id uint64, k, v string) []byte {
		return command{op: opPut, reqID: id, key: k, value: []byte(v)}.encode()
	}
	del := func(id uint64, k string) []byte { return command{op: opDelete, reqID: id, key: k}.encode() }
	// Compare and swap: if k is "a" make it "b", else make it "c".
	cas := func(id uint64) []byte {
		return command{op: opTxn, reqID: id, value: encodeTxn(messages.Txn{
			Compares: []messages.Compare{cmpValue("k", messages.CompareEqual, "a")},
			Success:  []messages.TxnOp{txnPut("k", "b")},
			Failure:  []messages.TxnOp{txnPut("k", "c")},
		})}.encode()
	}
	batchOf := func(id uint64, cmds ...[]byte) []byte {
		size := 0
		for _, c := range cmds {
			size += len(c)
		}
		return encodeBatch(id, cmds, size)
	}
	const p = 7 // another member's prefix: nobody waits here
	cases := []struct {
		name string
		// log is the entries' data, in index order; ref is the same log
		// without the copies (nil: an empty entry in a copy's place).
		log, ref [][]byte
		want     map[string]string
	}{
		{"a put, then another write of its key, then the put again",
			[][]byte{put(rid(p, 1), "k", "1"), put(rid(p, 2), "k", "2"), put(rid(p, 1), "k", "1")},
			[][]byte{put(rid(p, 1), "k", "1"), put(rid(p, 2), "k", "2"), nil},
			map[string]string{"k": "2"}},
		{"a put twice in a row",
			[][]byte{put(rid(p, 1), "k", "1"), put(rid(p, 1), "k", "1")},
			[][]byte{put(rid(p, 1), "k", "1"), nil},
			map[string]string{"k": "1"}},
		{"a delete twice, a put of its key between",
			[][]byte{put(rid(p, 1), "k", "1"), del(rid(p, 2), "k"), put(rid(p, 3), "k", "3"), del(rid(p, 2), "k")},
			[][]byte{put(rid(p, 1), "k", "1"), del(rid(p, 2), "k"), put(rid(p, 3), "k", "3"), nil},
			map[string]string{"k": "3"}},
		{"a compare and swap twice",
			[][]byte{put(rid(p, 1), "k", "a"), cas(rid(p, 2)), cas(rid(p, 2))},
			[][]byte{put(rid(p, 1), "k", "a"), cas(rid(p, 2)), nil},
			map[string]string{"k": "b"}},
		{"a batch twice",
			[][]byte{batchOf(rid(p, 10), put(rid(p, 1), "a", "1"), cas(rid(p, 2))), put(rid(p, 11), "a", "2"), batchOf(rid(p, 10), put(rid(p, 1), "a", "1"), cas(rid(p, 2)))},
			[][]byte{batchOf(rid(p, 10), put(rid(p, 1), "a", "1"), cas(rid(p, 2))), put(rid(p, 11), "a", "2"), nil},
			map[string]string{"a": "2", "k": "c"}},
		{"one write of a batch again, in another batch",
			[][]byte{batchOf(rid(p, 10), put(rid(p, 1), "a", "1"), put(rid(p, 2), "b", "1")), put(rid(p, 3), "b", "2"), batchOf(rid(p, 11), put(rid(p, 2), "b", "1"), put(rid(p, 4), "c", "1"))},
			[][]byte{batchOf(rid(p, 10), put(rid(p, 1), "a", "1"), put(rid(p, 2), "b", "1")), put(rid(p, 3), "b", "2"), batchOf(rid(p, 11), put(rid(p, 4), "c", "1"))},
			map[string]string{"a": "1", "b": "2", "c": "1"}},
		{"a copy proposed before the first is applied",
			[][]byte{put(rid(p, 2), "k", "2"), put(rid(p, 1), "k", "1"), put(rid(p, 2), "k", "2")},
			[][]byte{put(rid(p, 2), "k", "2"), put(rid(p, 1), "k", "1"), nil},
			map[string]string{"k": "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})   // applies the log
			ref := newFixture(t, fixtureOpts{}) // applies the log without copies
			for i := range c.log {
				idx := uint64(i + 1)
				f.wantDelivery(t, f.apply(normalEntry(idx, c.log[i])))
				ref.wantDelivery(t, ref.apply(normalEntry(idx, c.ref[i])))
			}
			f.noFatal(t)
			d, want := f.digest(t), ref.digest(t)
			if d != want {
				t.Fatalf("digest %+v, want %+v (the log without its copies)", d, want)
			}
			if got := f.view(t).data; fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("state %q, want %q", got, c.want)
			}
			if got, want := f.revision(t), ref.revision(t); got != want {
				t.Fatalf("revision %d, want %d", got, want)
			}
			for k := range c.want {
				if got, want := f.keyRecord(t, k), ref.keyRecord(t, k); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("key %s: %+v, want %+v", k, got, want)
				}
			}
		})
	}
}

// A client's write whose entry the log holds twice is answered once, by
// the first copy; and a member restarted with the copy still to come
// skips it too (the records are in its db).
func TestActorCopyAfterRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, fixtureOpts{dir: dir})
	w := f.request(messages.Put{Key: "k", Value: []byte("1")})
	p := recv[messages.Propose](t, f.raft.got, "Propose")
	f.wantDelivery(t, f.apply(normalEntry(1, p.Data)))
	if r := w.result(t); r.Err != nil || r.Revision != 1 {
		t.Fatalf("answer %+v, want success at revision 1", r)
	}
	f.wantDelivery(t, f.apply(normalEntry(2, p.Data)))
	w.pending(t) // no second answer
	if r := f.keyRecord(t, "k"); r.ModRevision != 1 || r.Version != 1 {
		t.Fatalf("k after its copy: %+v, want revision 1, version 1", r)
	}
	f.shutdown(t)

	g := newFixture(t, fixtureOpts{dir: dir})
	g.wantDelivery(t, g.apply(normalEntry(3, p.Data)))
	if r := g.keyRecord(t, "k"); r.ModRevision != 1 || r.Version != 1 {
		t.Fatalf("k after a copy applied after a restart: %+v, want revision 1, version 1", r)
	}
	// The restarted member's ids follow the one applied, whatever its clock
	// says: the state would skip an id it took for that one.
	g.request(messages.Put{Key: "j", Value: []byte("1")})
	q := recv[messages.Propose](t, g.raft.got, "Propose after the restart")
	if d := (q.ID - p.ID) & reqIDSuffixMask; q.ID&^reqIDSuffixMask != p.ID&^reqIDSuffixMask || d == 0 || d >= serialHalf {
		t.Fatalf("id after the restart %#x, want one after %#x", q.ID, p.ID)
	}
}

// A restarted member whose clock is behind the ids it made before still
// makes ids the state applies: its counter starts past the furthest one
// applied.
func TestActorIDsFollowAppliedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, fixtureOpts{dir: dir})
	ahead := (uint64(time.Now().UnixMilli())<<8 + 1<<40) & reqIDSuffixMask // as if its clock had been far ahead
	old := rid(1, ahead)
	f.wantDelivery(t, f.apply(normalEntry(1, command{op: opPut, reqID: old, key: "k", value: []byte("1")}.encode())))
	f.shutdown(t)

	g := newFixture(t, fixtureOpts{dir: dir})
	w := g.request(messages.Put{Key: "k", Value: []byte("2")})
	p := recv[messages.Propose](t, g.raft.got, "Propose")
	if p.ID != old+1 {
		t.Fatalf("first id after the restart %#x, want %#x", p.ID, old+1)
	}
	g.wantDelivery(t, g.apply(normalEntry(2, p.Data)))
	if r := w.result(t); r.Err != nil || r.Revision != 2 {
		t.Fatalf("answer %+v, want success at revision 2", r)
	}
}

// The bucket's functions for the db's layout: making it twice is harmless,
// and a reset forgets every record.
func TestDedupBucketLayout(t *testing.T) {
	b := openTestState(t, FormatNative).be
	for range 2 {
		if err := createDedupBucket(b.tx); err != nil {
			t.Fatal(err)
		}
	}
	firstApplies(t, b, []dedupStep{{"first", rid(1, 7), true}})
	for range 2 {
		if err := resetDedup(b.tx); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := b.dedupHigh(1); ok {
		t.Fatal("a record survived the reset")
	}
	firstApplies(t, b, []dedupStep{{"first, after the reset", rid(1, 7), true}})
}
