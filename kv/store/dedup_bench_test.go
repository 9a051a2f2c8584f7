package store

import (
	"testing"

	"github.com/raftkv/node/kv/backend"
)

// The rule's cost per command, ids of one proposer in order, committed
// every backend.BatchLimit as the kv actor commits.
func BenchmarkDedupFirstApply(b *testing.B) {
	s := newTestStore(b)
	for i := range b.N {
		if _, err := s.FirstApply(rid(1, uint64(i))); err != nil {
			b.Fatal(err)
		}
		if i%backend.BatchLimit == backend.BatchLimit-1 {
			if err := s.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
