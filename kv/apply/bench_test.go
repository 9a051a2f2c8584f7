package apply

import (
	"fmt"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/backend"
)

// BenchmarkCodec measures encoding and decoding one command (16-byte key,
// 100-byte value) in each format: the kv actor pays encode per proposal and
// decode per applied entry, on every member.
func BenchmarkCodec(b *testing.B) {
	c := Command{Op: OpPut, ReqID: 1<<48 | 12345, Key: "bench-0000000001", Value: make([]byte, 100)}
	for _, f := range []Format{FormatNative, FormatRaftexample} {
		codec, err := f.Codec()
		if err != nil {
			b.Fatal(err)
		}
		data, err := codec.Encode(c)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.String()+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Encode(c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.String()+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := codec.Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchKeys are the keys the apply benchmarks write, 16 bytes each: over
// 100,000 keys, most puts replace a value.
func benchKeys() []string {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-%010d", i)
	}
	return keys
}

// benchCommits are the commit intervals the apply benchmarks run with:
// backend.BatchLimit is the kv actor's bound; under a steady load its
// 100 ms tick (backend.BatchInterval) commits sooner.
var benchCommits = []int{100, 1000, backend.BatchLimit}

// BenchmarkApply measures what the kv actor pays per applied put in the db
// (16-byte key, 100-byte value, over 100,000 keys so that most puts replace
// a value): the write into the open transaction, the applied index, and a
// share of the commit every `every` entries, whose fsync the batching
// spreads. It is what it measured before the kv package was split, so
// that the figures in BENCHMARKS.md compare: the command is applied as
// decoded (the applier's step for one command, with no request id to
// record), without the entry's decoding, which BenchmarkCodec measures and
// BenchmarkApplyEntry adds.
func BenchmarkApply(b *testing.B) {
	value := make([]byte, 100)
	keys := benchKeys()
	for _, every := range benchCommits {
		b.Run(fmt.Sprintf("commit every %d", every), func(b *testing.B) {
			st := tmpStore(b)
			ap := newApplier(b, st, FormatNative, 0)
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			var rev uint64
			for b.Loop() {
				rev++
				c := Command{Op: OpPut, Key: keys[rev%uint64(len(keys))], Value: value}
				if err := ap.command(c, rev, waitNone); err != nil {
					b.Fatal(err)
				}
				// The actor hands the events to the watch hub after every
				// apply; kept, they would grow without bound here.
				st.TakeEvents()
				st.SetApplied(rev, 1, nil)
				if st.Backend().Pending() >= every {
					if err := st.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkApplyEntry is BenchmarkApply through the applier's whole path
// for a normal entry (Applier.Apply): the entry's data decoded, then the
// put applied as there, with no request id to record.
func BenchmarkApplyEntry(b *testing.B) {
	value := make([]byte, 100)
	keys := benchKeys()
	data := make([][]byte, len(keys))
	for i, k := range keys {
		data[i] = Command{Op: OpPut, Key: k, Value: value}.encode()
	}
	for _, every := range benchCommits {
		b.Run(fmt.Sprintf("commit every %d", every), func(b *testing.B) {
			st := tmpStore(b)
			ap := newApplier(b, st, FormatNative, 0)
			index := new(uint64)
			e := &raftpb.Entry{Term: new(uint64(1)), Index: index, Type: raftpb.EntryNormal.Enum()}
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			var rev uint64
			for b.Loop() {
				rev++
				*index, e.Data = rev, data[rev%uint64(len(data))]
				if _, err := ap.Apply(e, waitNone); err != nil {
					b.Fatal(err)
				}
				st.TakeEvents()
				if st.Backend().Pending() >= every {
					if err := st.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
