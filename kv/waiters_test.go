package kv

import (
	"maps"
	"slices"
	"testing"
	"time"
)

// The waiter registry: a request is taken out exactly once, by its answer
// (take), its deadline (expire) or the actor's end (drain), and whatever
// takes it out gets it; the rest stay registered.
func TestWaiters(t *testing.T) {
	now := time.Unix(1000, 0)
	// Deadlines relative to now: 1 and 2 have passed, 3 is now (not yet
	// past), 4 is to come.
	deadlines := map[uint64]time.Duration{1: -time.Second, 2: -time.Nanosecond, 3: 0, 4: time.Second}
	type op struct {
		kind string // take, expire or drain
		id   uint64 // take only
		// got is what the operation handed back (take: the waiter, if
		// any), by id; left is what stays registered after it.
		got, left []uint64
	}
	cases := []struct {
		name string
		ops  []op
	}{
		{"take one", []op{{kind: "take", id: 3, got: []uint64{3}, left: []uint64{1, 2, 4}}}},
		{"take twice", []op{
			{kind: "take", id: 4, got: []uint64{4}, left: []uint64{1, 2, 3}},
			{kind: "take", id: 4, left: []uint64{1, 2, 3}},
		}},
		{"take an unknown id", []op{{kind: "take", id: 9, left: []uint64{1, 2, 3, 4}}}},
		{"expire", []op{{kind: "expire", got: []uint64{1, 2}, left: []uint64{3, 4}}}},
		{"expire, then take the expired", []op{
			{kind: "expire", got: []uint64{1, 2}, left: []uint64{3, 4}},
			{kind: "take", id: 1, left: []uint64{3, 4}},
			{kind: "expire", left: []uint64{3, 4}},
		}},
		{"take, then expire", []op{
			{kind: "take", id: 2, got: []uint64{2}, left: []uint64{1, 3, 4}},
			{kind: "expire", got: []uint64{1}, left: []uint64{3, 4}},
		}},
		{"drain", []op{
			{kind: "drain", got: []uint64{1, 2, 3, 4}},
			{kind: "drain"},
			{kind: "take", id: 1},
		}},
		{"expire, then drain", []op{
			{kind: "expire", got: []uint64{1, 2}, left: []uint64{3, 4}},
			{kind: "drain", got: []uint64{3, 4}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws := make(waiters)
			byWaiter := make(map[*waiter]uint64)
			for id, d := range deadlines {
				w := &waiter{deadline: now.Add(d)}
				ws[id] = w
				byWaiter[w] = id
			}
			for i, o := range c.ops {
				var got []uint64
				collect := func(w *waiter) {
					id, ok := byWaiter[w]
					if !ok {
						t.Fatalf("op %d (%s): handed back a waiter never registered", i, o.kind)
					}
					got = append(got, id)
				}
				switch o.kind {
				case "take":
					w, ok := ws.take(o.id)
					if ok != (w != nil) {
						t.Fatalf("op %d: take(%d) = %v, %v", i, o.id, w, ok)
					}
					if ok {
						if byWaiter[w] != o.id {
							t.Fatalf("op %d: take(%d) handed back the waiter of %d", i, o.id, byWaiter[w])
						}
						collect(w)
					}
				case "expire":
					ws.expire(now, collect)
				case "drain":
					ws.drain(collect)
				default:
					t.Fatalf("op %d: unknown kind %q", i, o.kind)
				}
				slices.Sort(got)
				if !slices.Equal(got, o.got) {
					t.Errorf("op %d (%s %d): handed back %v, want %v", i, o.kind, o.id, got, o.got)
				}
				if left := slices.Sorted(maps.Keys(ws)); !slices.Equal(left, o.left) {
					t.Errorf("op %d (%s %d): %v left, want %v", i, o.kind, o.id, left, o.left)
				}
			}
		})
	}
}
