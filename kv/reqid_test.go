package kv

import (
	"testing"
	"time"
)

// Request id 0 is what an entry without an id decodes as (every entry a
// raftexample member writes), so no request may get it.
func TestReqIDNeverZero(t *testing.T) {
	cases := []struct {
		name string
		gen  *reqIDGen
		want uint64
	}{
		{"member with zero low bits, counter about to wrap", &reqIDGen{prefix: 0, next: reqIDSuffixMask}, 1},
		{"member with zero low bits, counter at zero", &reqIDGen{prefix: 0, next: 0}, 1},
		{"ordinary member wraps to its prefix", &reqIDGen{prefix: 3 << reqIDSuffixBits, next: reqIDSuffixMask}, 3 << reqIDSuffixBits},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.gen.id(); got != c.want {
				t.Fatalf("id() = %#x, want %#x", got, c.want)
			}
		})
	}
	g := newReqIDGen(1<<16, time.Now())
	seen := make(map[uint64]bool)
	for range 1000 {
		id := g.id()
		if id == 0 || seen[id] {
			t.Fatalf("id %#x is zero or repeated", id)
		}
		seen[id] = true
	}
}
