package kv

import "testing"

// The rule's cost per command, ids of one proposer in order, committed
// every 10,000 as the actor commits.
func BenchmarkDedupFirstApply(b *testing.B) {
	be := openTestState(b, FormatNative).be
	for i := range b.N {
		if _, err := be.firstApply(rid(1, uint64(i))); err != nil {
			b.Fatal(err)
		}
		if i%commitEntries == commitEntries-1 {
			if err := be.commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
