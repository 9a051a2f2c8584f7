package transport

import (
	"bytes"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// BenchmarkFrames measures writing and reading one stream frame of a MsgApp
// carrying 64 entries of 100 bytes, a leader's typical batch under load.
func BenchmarkFrames(b *testing.B) {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(uint64(1)), To: new(uint64(2)),
		Term: new(uint64(3)), LogTerm: new(uint64(3)), Index: new(uint64(1000)), Commit: new(uint64(999))}
	for i := range 64 {
		m.Entries = append(m.Entries, &raftpb.Entry{Term: new(uint64(3)), Index: new(uint64(1001 + i)),
			Type: raftpb.EntryNormal.Enum(), Data: make([]byte, 100)})
	}
	kinds := []struct {
		name string
		enc  func(io.Writer) encoder
		dec  func(io.Reader) decoder
	}{
		{"message", func(w io.Writer) encoder { return &messageEncoder{w: w} }, func(r io.Reader) decoder { return &messageDecoder{r: r} }},
		{"msgappv2", func(w io.Writer) encoder { return &msgAppEncoder{w: w} }, func(r io.Reader) decoder { return &msgAppDecoder{r: r, local: 2, remote: 1} }},
	}
	for _, k := range kinds {
		var frame bytes.Buffer
		if err := k.enc(&frame).encode(m); err != nil {
			b.Fatal(err)
		}
		b.Run(k.name+"/encode", func(b *testing.B) {
			b.SetBytes(int64(frame.Len()))
			b.ReportAllocs()
			enc := k.enc(io.Discard)
			for b.Loop() {
				if err := enc.encode(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.name+"/decode", func(b *testing.B) {
			b.SetBytes(int64(frame.Len()))
			b.ReportAllocs()
			r := bytes.NewReader(frame.Bytes())
			for b.Loop() {
				r.Reset(frame.Bytes())
				if _, err := k.dec(r).decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
