package kv

import (
	"fmt"
	"testing"
	"time"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/reqid"
	"github.com/raftkv/node/messages"
)

// The dedup rule itself (store.Store.FirstApply) is tested in package
// store; these are the kv actor's side of it.

// rid is the request id of counter n of proposer prefix p.
func rid(p, n uint64) uint64 { return p<<reqid.SuffixBits | n&reqid.SuffixMask }

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
		return encodeNative(apply.Command{Op: apply.OpPut, ReqID: id, Key: k, Value: []byte(v)})
	}
	del := func(id uint64, k string) []byte {
		return encodeNative(apply.Command{Op: apply.OpDelete, ReqID: id, Key: k})
	}
	// Compare and swap: if k is "a" make it "b", else make it "c".
	swap, _, _, err := apply.ProposeTxn(messages.Txn{
		Compares: []messages.Compare{{Key: "k", Target: messages.CompareValue, Op: messages.CompareEqual, Value: []byte("a")}},
		Success:  []messages.TxnOp{{Type: messages.OpPut, Key: "k", Value: []byte("b")}},
		Failure:  []messages.TxnOp{{Type: messages.OpPut, Key: "k", Value: []byte("c")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cas := func(id uint64) []byte {
		c := swap
		c.ReqID = id
		return encodeNative(c)
	}
	batchOf := func(id uint64, cmds ...[]byte) []byte {
		size := 0
		for _, c := range cmds {
			size += len(c)
		}
		return apply.EncodeBatch(id, cmds, size)
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
	if d := (q.ID - p.ID) & reqid.SuffixMask; q.ID&^reqid.SuffixMask != p.ID&^reqid.SuffixMask || d == 0 || d >= reqid.SerialHalf {
		t.Fatalf("id after the restart %#x, want one after %#x", q.ID, p.ID)
	}
}

// A restarted member whose clock is behind the ids it made before still
// makes ids the state applies: its counter starts past the furthest one
// applied.
func TestActorIDsFollowAppliedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, fixtureOpts{dir: dir})
	ahead := (uint64(time.Now().UnixMilli())<<8 + 1<<40) & reqid.SuffixMask // as if its clock had been far ahead
	old := rid(1, ahead)
	f.wantDelivery(t, f.apply(normalEntry(1, encodeNative(apply.Command{Op: apply.OpPut, ReqID: old, Key: "k", Value: []byte("1")}))))
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
