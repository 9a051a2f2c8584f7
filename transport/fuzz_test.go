package transport

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Both decoders read bytes a peer chose. Whatever arrives, a decoder must
// not panic, must end with one of the errors the stream reader expects, and
// what it does decode must survive our own encoder unchanged.

// decodeErrorOK is whether err is one a decoder may end a stream with.
func decodeErrorOK(err error) bool {
	return err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, ErrBadFrame)
}

func FuzzMessageDecoder(f *testing.F) {
	var stream bytes.Buffer
	enc := &messageEncoder{w: &stream}
	for _, m := range codecSamples() {
		var one bytes.Buffer
		if err := (&messageEncoder{w: &one}).encode(m); err != nil {
			f.Fatal(err)
		}
		f.Add(one.Bytes())
		if err := enc.encode(m); err != nil {
			f.Fatal(err)
		}
	}
	if err := enc.heartbeat(); err != nil {
		f.Fatal(err)
	}
	f.Add(stream.Bytes())
	f.Add([]byte{})
	f.Add(frameU64(maxMessageBytes + 1))
	f.Add(frameCat(frameU64(3), []byte{0xff, 0xff, 0xff}))

	f.Fuzz(func(t *testing.T, data []byte) {
		dec := &messageDecoder{r: bytes.NewReader(data)}
		for {
			m, err := dec.decode()
			if err != nil {
				if !decodeErrorOK(err) {
					t.Fatalf("decode ended with %v", err)
				}
				return
			}
			var b bytes.Buffer
			if err := (&messageEncoder{w: &b}).encode(m); err != nil {
				t.Fatalf("re-encode %v: %v", m, err)
			}
			again, err := (&messageDecoder{r: &b}).decode()
			if err != nil || !proto.Equal(again, m) {
				t.Fatalf("%v re-encoded decodes as %v, %v", m, again, err)
			}
		}
	})
}

func FuzzMsgAppDecoder(f *testing.F) {
	first := codecMsgApp(5, 5, 10, 10, codecEntries(5, 11, 12)...)
	f.Add(frameHeartbeat())
	f.Add(frameMessage(f, first))
	f.Add(frameEntries(f, 12, codecEntries(5, 13, 14)...))
	f.Add(frameCat(frameHeartbeat(), frameMessage(f, first), frameEntries(f, 12, codecEntries(5, 13, 14)...),
		frameHeartbeat(), frameEntries(f, 14), frameMessage(f, codecMsgApp(6, 5, 14, 14))))
	f.Add([]byte{0x03})
	f.Add(frameCat([]byte{msgAppEntries}, frameU64(maxMessageBytes/8+1)))
	f.Add(frameCat([]byte{msgAppMessage}, frameU64(maxMessageBytes+1)))

	f.Fuzz(func(t *testing.T, data []byte) {
		var fast atomic.Uint64
		dec := &msgAppDecoder{r: bytes.NewReader(data), local: codecReader, remote: codecWriter, fastFrames: &fast}
		// term and next follow the stream as a reader must: a 0x01 frame
		// continues from the last MsgApp.
		var term, next uint64
		for {
			before := fast.Load()
			m, err := dec.decode()
			if err != nil {
				if !decodeErrorOK(err) {
					t.Fatalf("decode ended with %v", err)
				}
				return
			}
			if isLinkHeartbeat(m) {
				continue
			}
			if fast.Load() != before {
				if m.GetType() != raftpb.MsgApp || m.GetFrom() != codecWriter || m.GetTo() != codecReader {
					t.Fatalf("0x01 frame decoded as %v, want a MsgApp from %d to %d", m, codecWriter, codecReader)
				}
				if m.GetTerm() != term || m.GetLogTerm() != term || m.GetIndex() != next {
					t.Fatalf("0x01 frame decoded as %v, want term and log term %d, index %d", m, term, next)
				}
			}
			term, next = m.GetTerm(), m.GetIndex()
			if n := len(m.GetEntries()); n > 0 {
				if fast.Load() != before {
					next += uint64(n)
				} else {
					next = m.GetEntries()[n-1].GetIndex()
				}
			}
			var b bytes.Buffer
			if err := (&msgAppEncoder{w: &b}).encode(m); err != nil {
				t.Fatalf("re-encode %v: %v", m, err)
			}
			again, err := (&msgAppDecoder{r: &b, local: codecReader, remote: codecWriter}).decode()
			if err != nil || !proto.Equal(again, m) {
				t.Fatalf("%v re-encoded decodes as %v, %v", m, again, err)
			}
		}
	})
}
