package kv

import (
	"strconv"
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

// BenchmarkSnapshot measures encoding and decoding the state of 100,000
// keys with 100-byte values: the snapshot encoder encodes a frozen view
// every SnapshotCount entries, while the kv actor goes on applying; a
// restart or a lagging follower decodes.
func BenchmarkSnapshot(b *testing.B) {
	st := newStore()
	for i := range 100_000 {
		st.data.set("key-"+strconv.Itoa(i), make([]byte, 100))
	}
	for _, f := range []Format{FormatNative, FormatRaftexample} {
		codec, err := f.codec()
		if err != nil {
			b.Fatal(err)
		}
		data, err := codec.marshal(st.freeze())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.String()+"/marshal", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := codec.marshal(st.freeze()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f.String()+"/unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := codec.unmarshal(data, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
