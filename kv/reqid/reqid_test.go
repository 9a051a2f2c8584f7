package reqid

import (
	"testing"
	"time"
)

// Request id 0 is what an entry without an id decodes as (every entry a
// raftexample member writes), so no request may get it.
func TestReqIDNeverZero(t *testing.T) {
	cases := []struct {
		name string
		gen  *Gen
		want uint64
	}{
		{"member with zero low bits, counter about to wrap", &Gen{prefix: 0, next: SuffixMask}, 1},
		{"member with zero low bits, counter at zero", &Gen{prefix: 0, next: 0}, 1},
		{"ordinary member wraps to its prefix", &Gen{prefix: 3 << SuffixBits, next: SuffixMask}, 3 << SuffixBits},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.gen.ID(); got != c.want {
				t.Fatalf("id() = %#x, want %#x", got, c.want)
			}
		})
	}
	g := New(1<<16, time.Now())
	seen := make(map[uint64]bool)
	for range 1000 {
		id := g.ID()
		if id == 0 || seen[id] {
			t.Fatalf("id %#x is zero or repeated", id)
		}
		seen[id] = true
	}
}

// rid is the request id of counter n of proposer prefix p.
func rid(p, n uint64) uint64 { return p<<SuffixBits | n&SuffixMask }

// SkipPast moves the counter to an id of this member's that is ahead of
// it, serially, and ignores any other.
func TestReqIDSkipPast(t *testing.T) {
	start := New(1, time.Now())
	ahead := (start.next + 1000) & SuffixMask
	cases := []struct {
		name string
		next uint64 // the counter before
		id   uint64
		want uint64 // the next id made
	}{
		{"ahead", start.next, rid(1, ahead), rid(1, ahead+1)},
		{"behind", start.next, rid(1, start.next-1000), rid(1, start.next+1)},
		{"another member's", start.next, rid(2, ahead), rid(1, start.next+1)},
		{"ahead past the wrap", SuffixMask - 5, rid(1, 3), rid(1, 4)},
		{"behind across the wrap", 3, rid(1, SuffixMask-5), rid(1, 4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &Gen{prefix: start.prefix, next: c.next}
			g.SkipPast(c.id)
			if got := g.ID(); got != c.want {
				t.Fatalf("next id %#x, want %#x", got, c.want)
			}
		})
	}
}
