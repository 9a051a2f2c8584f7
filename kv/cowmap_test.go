package kv

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"testing"
)

// snapshotOfMap copies a frozenMap into an ordinary map.
func snapshotOfMap(f *frozenMap) map[string][]byte {
	m := make(map[string][]byte, f.len())
	for k, v := range f.all() {
		m[k] = v
	}
	return m
}

// TestCowMapMatchesAMap drives a cowMap and a plain map with the same random
// writes, freezes and thaws: the cowMap must read like the plain map at
// every step, and each frozen view like the plain map at its freeze, however
// many writes came after.
func TestCowMapMatchesAMap(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			c, ref := newCowMap(), map[string][]byte{}
			var frozen *frozenMap
			var want map[string][]byte
			for step := range 5000 {
				key := "k" + strconv.Itoa(rng.IntN(600))
				switch p := rng.IntN(100); {
				case p < 60:
					v := []byte(strconv.Itoa(step))
					c.set(key, v)
					ref[key] = v
				case p < 90:
					c.delete(key)
					delete(ref, key)
				case p < 95 && frozen == nil:
					frozen, want = c.freeze(), maps.Clone(ref)
				case frozen != nil:
					if got := snapshotOfMap(frozen); !maps.EqualFunc(got, want, bytes.Equal) || frozen.len() != len(want) {
						t.Fatalf("step %d: frozen view changed: %d keys, want %d", step, frozen.len(), len(want))
					}
					frozen = nil
					c.thaw()
				}
				if c.len() != len(ref) {
					t.Fatalf("step %d: len %d, want %d", step, c.len(), len(ref))
				}
				if v, ok := c.get(key); ok != (ref[key] != nil) || !bytes.Equal(v, ref[key]) {
					t.Fatalf("step %d: get %s = %q, %v; want %q", step, key, v, ok, ref[key])
				}
			}
			if got := snapshotOfMap(c.freezeless()); !maps.EqualFunc(got, ref, bytes.Equal) {
				t.Fatalf("final state differs from the plain map")
			}
		})
	}
}

// TestFrozenMapReadWhileWriting reads a frozen view on another goroutine
// while the owner overwrites and deletes every key. Under -race a write to a
// piece the view shares is reported; without -race the view's contents
// would differ.
func TestFrozenMapReadWhileWriting(t *testing.T) {
	c := newCowMap()
	want := map[string][]byte{}
	for i := range 10000 {
		k, v := "k"+strconv.Itoa(i), []byte("v"+strconv.Itoa(i))
		c.set(k, v)
		want[k] = v
	}
	frozen := c.freeze()
	var got map[string][]byte
	var wg sync.WaitGroup
	wg.Go(func() { got = snapshotOfMap(frozen) })
	for i := range 10000 {
		k := "k" + strconv.Itoa(i)
		if i%2 == 0 {
			c.delete(k)
		} else {
			c.set(k, []byte("new"))
		}
		c.set("extra"+strconv.Itoa(i), []byte("x"))
	}
	wg.Wait()
	if !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("frozen view read %d keys, want the %d of the freeze", len(got), len(want))
	}
	if c.len() != 15000 {
		t.Fatalf("len %d after the writes, want 15000", c.len())
	}
}

// TestCowMapCopiesOnlyWhileFrozen: after a freeze the first write to a piece
// copies it (the view keeps the old map), a second write does not, and
// after thaw no write copies.
func TestCowMapCopiesOnlyWhileFrozen(t *testing.T) {
	c := newCowMap()
	c.set("k", []byte("1"))
	sh := c.shard("k")
	ptr := func() uintptr { return reflect.ValueOf(sh.m).Pointer() }

	before := ptr()
	c.set("k", []byte("2"))
	if ptr() != before {
		t.Fatal("a write copied a piece no view shares")
	}
	frozen := c.freeze()
	c.set("k", []byte("3"))
	copied := ptr()
	if copied == before {
		t.Fatal("the first write after a freeze did not copy the piece")
	}
	c.set("k", []byte("4"))
	if ptr() != copied {
		t.Fatal("a second write after a freeze copied the piece again")
	}
	if v, _ := snapshotOfMap(frozen)["k"]; string(v) != "2" {
		t.Fatalf("frozen view has k=%q, want 2", v)
	}
	c.freeze()
	c.thaw()
	c.set("k", []byte("5"))
	if ptr() != copied {
		t.Fatal("a write after thaw copied the piece")
	}
}
