package kv

import (
	"hash/maphash"
	"iter"
	"maps"
)

// cowShards is how many pieces the key-value map is split into. A snapshot
// freezes every piece at once; afterwards the first write to a piece copies
// it. At 700,000 keys one piece holds about 2,700 and copies in about
// 0.25 ms, where cloning the whole map would stop the kv actor for 60 ms
// and encoding it there for 200 to 900 ms. More pieces would shorten each
// copy further but add a fixed cost to every snapshot and every empty store.
const cowShards = 256

// cowMap is the key-value map of the state machine, with snapshots that
// cost the kv actor almost nothing: freeze hands out the current pieces as
// an immutable frozenMap, which another actor may read while this one goes
// on writing. It is not safe for concurrent writers; only the frozenMap it
// returns may be read from elsewhere.
type cowMap struct {
	seed maphash.Seed
	// gen counts freezes. A piece created in an earlier generation may be
	// shared with a frozenMap and is copied before its first write.
	gen    uint64
	shards [cowShards]cowShard
	n      int
}

type cowShard struct {
	m   map[string][]byte
	gen uint64
}

func newCowMap() *cowMap { return &cowMap{seed: maphash.MakeSeed()} }

// reserve makes room for about n keys, spread evenly, so that restoring a
// snapshot does not grow every piece step by step. It only sizes pieces not
// yet created.
func (c *cowMap) reserve(n int) {
	per := n/cowShards + n/cowShards/8 // the spread is uneven by a few percent
	for i := range c.shards {
		if c.shards[i].m == nil {
			c.shards[i] = cowShard{m: make(map[string][]byte, per), gen: c.gen}
		}
	}
}

func (c *cowMap) shard(key string) *cowShard {
	return &c.shards[maphash.String(c.seed, key)%cowShards]
}

func (c *cowMap) get(key string) ([]byte, bool) {
	v, ok := c.shard(key).m[key]
	return v, ok
}

// set stores v under key. v must not be modified afterwards: a frozenMap
// may share it.
func (c *cowMap) set(key string, v []byte) {
	m := c.writable(c.shard(key))
	if _, ok := m[key]; !ok {
		c.n++
	}
	m[key] = v
}

func (c *cowMap) delete(key string) {
	sh := c.shard(key)
	if _, ok := sh.m[key]; !ok {
		return // nothing to copy the piece for
	}
	delete(c.writable(sh), key)
	c.n--
}

// writable returns sh's map, copied first if a frozenMap may share it.
func (c *cowMap) writable(sh *cowShard) map[string][]byte {
	if sh.m == nil {
		sh.m, sh.gen = make(map[string][]byte), c.gen
	} else if sh.gen != c.gen {
		sh.m, sh.gen = maps.Clone(sh.m), c.gen
	}
	return sh.m
}

func (c *cowMap) len() int { return c.n }

// all yields every key and value, in no particular order.
func (c *cowMap) all() iter.Seq2[string, []byte] { return c.freezeless().all() }

// freeze returns the map as it is now. The frozenMap stays valid, and may
// be read by another goroutine, however the cowMap changes later, until
// thaw is called.
func (c *cowMap) freeze() *frozenMap {
	f := c.freezeless()
	c.gen++
	return f
}

// thaw says that no frozenMap of c is read any more, so the pieces not yet
// copied since the last freeze belong to c alone again and need no copy.
// Calling it while a frozenMap is still read is a data race.
func (c *cowMap) thaw() {
	for i := range c.shards {
		c.shards[i].gen = c.gen
	}
}

// freezeless is a view without a new generation, for reading on the
// owner's goroutine only.
func (c *cowMap) freezeless() *frozenMap {
	f := &frozenMap{n: c.n}
	for i := range c.shards {
		f.shards[i] = c.shards[i].m
	}
	return f
}

// frozenMap is the key-value map as of a freeze: read-only, and safe to
// read from any goroutine.
type frozenMap struct {
	shards [cowShards]map[string][]byte
	n      int
}

func (f *frozenMap) len() int { return f.n }

func (f *frozenMap) all() iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		for _, m := range f.shards {
			for k, v := range m {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}
