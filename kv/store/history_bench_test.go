package store

import (
	"fmt"
	"testing"

	"github.com/raftkv/node/kv/backend"
)

// A batch of writes, each trimming the history back to its bound, as the
// applier does after every entry: the cost of one write's trim must not
// grow with the writes of the batch before it (BENCHMARKS.md's deletes of
// 1.8 M keys spent 85 % of their time here when it did).
func BenchmarkHistoryTrimInABatch(b *testing.B) {
	const bound = 10_000
	value := make([]byte, 100)
	s := newTestStore(b)
	rev := uint64(FirstRevision)
	put := func() {
		rev++
		if err := s.Put(fmt.Sprintf("k%08d", rev), value, rev, 0); err != nil {
			b.Fatal(err)
		}
		s.SetApplied(rev, 1, nil)
	}
	for range bound {
		put()
	}
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		put()
		if err := s.CompactHistory(bound, 1<<40); err != nil {
			b.Fatal(err)
		}
		if i%backend.BatchLimit == backend.BatchLimit-1 {
			if err := s.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
