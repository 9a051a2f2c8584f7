package kv

import (
	"fmt"
	"testing"
)

// BenchmarkCodec measures encoding and decoding one command (16-byte key,
// 100-byte value) in each format: the kv actor pays encode per proposal and
// decode per applied entry, on every member.
func BenchmarkCodec(b *testing.B) {
	c := command{op: opPut, reqID: 1<<48 | 12345, key: "bench-0000000001", value: make([]byte, 100)}
	for _, f := range []Format{FormatNative, FormatRaftexample} {
		codec, err := f.codec()
		if err != nil {
			b.Fatal(err)
		}
		data, err := codec.encode(c)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.String()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.encode(c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.String()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApply measures what the kv actor pays per applied put in the db
// (16-byte key, 100-byte value, over 100,000 keys so that most puts replace
// a value): the write into the open transaction, the applied index, and a
// share of the commit every `every` entries, whose fsync the batching
// spreads. commitEntries is the actor's bound; under a steady load its
// 100 ms tick commits sooner.
func BenchmarkApply(b *testing.B) {
	value := make([]byte, 100)
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-%010d", i)
	}
	for _, every := range []int{100, 1000, commitEntries} {
		b.Run(fmt.Sprintf("commit every %d", every), func(b *testing.B) {
			st := openTestState(b, FormatNative)
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			var rev uint64
			for b.Loop() {
				rev++
				c := command{op: opPut, key: keys[rev%uint64(len(keys))], value: value}
				if _, err := st.st.apply(c, rev, 0); err != nil {
					b.Fatal(err)
				}
				// The actor hands the events to the watch hub after every
				// apply; kept, they would grow without bound here.
				st.st.takeEvents()
				st.be.setApplied(rev, 1, nil)
				if st.be.pending >= every {
					if err := st.be.commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
