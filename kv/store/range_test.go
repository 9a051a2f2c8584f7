package store

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/node/messages"
)

// keysOf lists the keys of a range answer.
func keysOf(res messages.OpResult) []string {
	var keys []string
	for _, kv := range res.KVs {
		keys = append(keys, kv.Key)
	}
	return keys
}

func TestReadRange(t *testing.T) {
	s := newTestStore(t)
	keys := []string{"a", "a/1", "a/2", "a0", "b", "c", "c\x00", "d"}
	for i, k := range keys {
		mustPut(t, s, k, "v-"+k, uint64(i+1))
	}
	mustPut(t, s, "b", "v-b2", 9) // b: created at 5, version 2

	cases := []struct {
		name      string
		r         messages.Range
		keys      []string
		more      bool
		count     int
		keysOnly  bool
		countOnly bool
	}{
		{name: "[a, c)", r: messages.Range{Start: "a", End: "c"}, keys: []string{"a", "a/1", "a/2", "a0", "b"}},
		{name: "prefix a/", r: messages.Range{Start: "a/", End: "a0"}, keys: []string{"a/1", "a/2"}},
		{name: "one key", r: messages.Range{Start: "b"}, keys: []string{"b"}},
		{name: "one absent key", r: messages.Range{Start: "bb"}},
		{name: "every key from c", r: messages.Range{Start: "c", End: RangeEndAll}, keys: []string{"c", "c\x00", "d"}},
		{name: "every key", r: messages.Range{End: RangeEndAll}, keys: keys},
		{name: "end before start", r: messages.Range{Start: "c", End: "b"}},
		{name: "end is start", r: messages.Range{Start: "c", End: "c"}},
		{name: "c alone, not c\\x00", r: messages.Range{Start: "c", End: "c\x00"}, keys: []string{"c"}},
		{name: "limit", r: messages.Range{End: RangeEndAll, Limit: 3}, keys: keys[:3], more: true},
		{name: "limit of exactly the keys", r: messages.Range{Start: "a", End: "b", Limit: 4}, keys: keys[:4]},
		{name: "limit of one more", r: messages.Range{Start: "a", End: "b", Limit: 5}, keys: keys[:4]},
		{name: "keys only", r: messages.Range{Start: "b", End: "d", KeysOnly: true}, keys: []string{"b", "c", "c\x00"}, keysOnly: true},
		{name: "count only counts every key", r: messages.Range{End: RangeEndAll, CountOnly: true, Limit: 1}, count: len(keys), countOnly: true},
		{name: "count only, empty", r: messages.Range{Start: "x", End: "z", CountOnly: true}, countOnly: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := s.Range(c.r)
			if err != nil {
				t.Fatalf("Range: %v", err)
			}
			if got := keysOf(res); !slices.Equal(got, c.keys) || res.More != c.more {
				t.Fatalf("keys %q more %v, want %q more %v", got, res.More, c.keys, c.more)
			}
			want := c.count
			if !c.countOnly {
				want = len(c.keys)
			}
			if res.Count != want {
				t.Fatalf("count %d, want %d", res.Count, want)
			}
			for _, kv := range res.KVs {
				rec := kvOf(t, s, kv.Key)
				if c.keysOnly {
					rec.Value = nil
				}
				if !reflect.DeepEqual(kv, rec) {
					t.Fatalf("read %+v, want %+v", kv, rec)
				}
			}
		})
	}

	// Refusals.
	if _, err := s.Range(messages.Range{End: "b"}); !errors.Is(err, messages.ErrInvalidTxn) {
		t.Fatalf("a range with no start: %v, want ErrInvalidTxn", err)
	}
	if _, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: 10}); !errors.Is(err, messages.ErrFutureRevision) {
		t.Fatalf("a range at revision 10 of a store at 9: %v, want ErrFutureRevision", err)
	}
	if res, err := s.Range(messages.Range{Start: "b", Revision: 9}); err != nil || len(res.KVs) != 1 || string(res.KVs[0].Value) != "v-b2" {
		t.Fatalf("a range at the store's revision: %+v %v", res, err)
	}
}

// A page is DefaultRangeLimit keys unless the read names a limit, and never
// more than MaxRangeLimit.
func TestReadRangeLimits(t *testing.T) {
	s := newTestStore(t)
	for i := range MaxRangeLimit + 5 {
		if err := s.Put(fmt.Sprintf("k%05d", i), nil, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		limit, want int
	}{
		{0, DefaultRangeLimit},
		{-1, DefaultRangeLimit},
		{1, 1},
		{MaxRangeLimit, MaxRangeLimit},
		{MaxRangeLimit + 1, MaxRangeLimit},
		{1 << 40, MaxRangeLimit},
	} {
		res, err := s.Range(messages.Range{Start: "k", End: RangeEndAll, Limit: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.KVs) != c.want || res.Count != c.want || !res.More {
			t.Fatalf("limit %d: %d keys (count %d, more %v), want %d and more", c.limit, len(res.KVs), res.Count, res.More, c.want)
		}
	}
}

// A range read at a past revision answers what a read at that revision
// answered: a random history of puts, deletes and delete ranges over a small
// key space, applied as entries (some changing nothing), and read at every
// revision the history still reaches, whole and in pages, against a model's
// snapshots.
func TestReadRangePastRevisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newTestStore(t)
	keyspace := []string{"a", "b", "b/1", "b/2", "c", "d", "e\xff", "f"}
	model := map[string]messages.KV{}
	snapshots := map[uint64]map[string]messages.KV{0: {}}
	var rev uint64 // the model's store revision
	ranges := []messages.Range{
		{End: RangeEndAll},
		{Start: "b", End: "d"},
		{Start: "b/", End: "b0"},
		{Start: "c"},
		{Start: "e", End: RangeEndAll},
		{Start: "a", End: "b/2", KeysOnly: true},
		{Start: "a", End: RangeEndAll, CountOnly: true},
	}
	check := func(at uint64) {
		t.Helper()
		want := snapshots[at]
		for _, r := range ranges {
			r.Revision = at
			res, err := s.Range(r)
			if err != nil {
				t.Fatalf("revision %d, range %+v: %v", at, r, err)
			}
			var wantKVs []messages.KV
			for _, k := range slices.Sorted(maps.Keys(want)) {
				if InRange(k, r.Start, r.End) {
					kv := want[k]
					if r.KeysOnly {
						kv.Value = nil
					}
					wantKVs = append(wantKVs, kv)
				}
			}
			if r.CountOnly {
				if res.Count != len(wantKVs) || len(res.KVs) != 0 {
					t.Fatalf("revision %d, range %+v: count %d (%d keys), want %d", at, r, res.Count, len(res.KVs), len(wantKVs))
				}
				continue
			}
			if !sameKVs(res.KVs, wantKVs) || res.More {
				t.Fatalf("revision %d (store at %d), range %+v:\n got %s\nwant %s", at, s.Revision(), r, fmtKVs(res.KVs), fmtKVs(wantKVs))
			}
			// In pages of 2, each starting after the last key of the
			// one before, as a continuation reads.
			var paged []messages.KV
			for page := r; ; {
				page.Limit = 2
				res, err := s.Range(page)
				if err != nil {
					t.Fatalf("revision %d, page %+v: %v", at, page, err)
				}
				paged = append(paged, res.KVs...)
				if !res.More {
					break
				}
				if page.End == "" {
					t.Fatalf("a one-key range has more")
				}
				page.Start = res.KVs[len(res.KVs)-1].Key + "\x00"
			}
			if !sameKVs(paged, wantKVs) {
				t.Fatalf("revision %d, range %+v in pages:\n got %s\nwant %s", at, r, fmtKVs(paged), fmtKVs(wantKVs))
			}
		}
	}

	const entries = 400
	for idx := uint64(1); idx <= entries; idx++ {
		// An entry: up to three changes to distinct keys, or a delete
		// range, or a delete of an absent key (which changes nothing).
		changed := false
		switch n := rng.IntN(10); {
		case n == 0:
			lo, hi := keyspace[rng.IntN(len(keyspace))], keyspace[rng.IntN(len(keyspace))]
			if hi < lo {
				lo, hi = hi, lo
			}
			if _, err := s.DeleteRange(lo, hi, idx); err != nil {
				t.Fatal(err)
			}
			for k := range model {
				if InRange(k, lo, hi) {
					delete(model, k)
					changed = true
				}
			}
		case n == 1:
			mustDel(t, s, "absent", idx)
		default:
			for _, i := range rng.Perm(len(keyspace))[:1+rng.IntN(3)] {
				k := keyspace[i]
				if rng.IntN(3) == 0 {
					mustDel(t, s, k, idx)
					if _, ok := model[k]; ok {
						delete(model, k)
						changed = true
					}
					continue
				}
				v := fmt.Sprint(idx, "-", k)
				mustPut(t, s, k, v, idx)
				kv := model[k]
				if kv.Version == 0 {
					kv.CreateRevision = idx
				}
				kv.Key, kv.Value, kv.ModRevision, kv.Version = k, []byte(v), idx, kv.Version+1
				model[k] = kv
				changed = true
			}
		}
		if changed {
			rev = idx
		}
		snapshots[idx] = maps.Clone(model)
		if want := max(rev, FirstRevision); s.Revision() != want {
			t.Fatalf("after entry %d: store revision %d, want %d", idx, s.Revision(), want)
		}
		if idx%50 == 0 {
			if err := s.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.TakeEvents()
	for at := uint64(1); at <= rev; at++ {
		check(at)
	}

	// Compacted: every revision from the compacted one on still reads as
	// it did; below it the read fails, saying where the history starts.
	if err := s.CompactHistory(s.meta.histEvents/2, DefaultHistoryBytes); err != nil {
		t.Fatal(err)
	}
	compacted := s.Compacted()
	if compacted == 0 || compacted >= rev {
		t.Fatalf("compacted at %d of %d", compacted, rev)
	}
	for at := uint64(0); at <= rev; at++ {
		if at >= compacted {
			check(at)
			continue
		}
		_, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: at})
		var ce *messages.CompactedError
		if at == 0 {
			// Revision 0 is the current one.
			if err != nil {
				t.Fatalf("revision 0: %v", err)
			}
			continue
		}
		if !errors.As(err, &ce) || !errors.Is(err, messages.ErrCompacted) || ce.Compacted != compacted || ce.Revision != at {
			t.Fatalf("a read at %d below the compacted %d: %v, want a CompactedError", at, compacted, err)
		}
	}
}

func sameKVs(a, b []messages.KV) bool {
	return fmtKVs(a) == fmtKVs(b)
}

func fmtKVs(kvs []messages.KV) string {
	var b strings.Builder
	for _, kv := range kvs {
		fmt.Fprintf(&b, "[%q=%q c%d m%d v%d]", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	return b.String()
}
