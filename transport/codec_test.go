package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The two ends of every stream decoded here: member 1 writes, member 2
// reads. A msgappv2 decoder must stamp 0x01 frames with exactly these.
const (
	codecWriter uint64 = 1
	codecReader uint64 = 2
)

func codecEntries(term uint64, indexes ...uint64) []*raftpb.Entry {
	es := make([]*raftpb.Entry, 0, len(indexes))
	for _, i := range indexes {
		es = append(es, &raftpb.Entry{
			Term:  new(term),
			Index: new(i),
			Type:  raftpb.EntryNormal.Enum(),
			Data:  fmt.Appendf(nil, "entry %d", i),
		})
	}
	return es
}

// codecMsgApp is a MsgApp from the stream's writer to its reader.
func codecMsgApp(term, logTerm, index, commit uint64, entries ...*raftpb.Entry) *raftpb.Message {
	return &raftpb.Message{
		Type:    raftpb.MsgApp.Enum(),
		From:    new(codecWriter),
		To:      new(codecReader),
		Term:    new(term),
		LogTerm: new(logTerm),
		Index:   new(index),
		Commit:  new(commit),
		Entries: entries,
	}
}

// codecSamples are messages of the kinds a message stream carries, chosen
// so that every optional part of a Message (entries, snapshot, context,
// reject hint) appears in at least one.
func codecSamples() map[string]*raftpb.Message {
	return map[string]*raftpb.Message{
		"MsgApp with entries": codecMsgApp(4, 3, 10, 9, codecEntries(4, 11, 12, 13)...),
		"MsgApp without entries": {
			Type: raftpb.MsgApp.Enum(), From: new(codecWriter), To: new(codecReader),
			Term: new(uint64(4)), LogTerm: new(uint64(4)), Index: new(uint64(13)), Commit: new(uint64(13)),
		},
		"MsgHeartbeat": {
			Type: raftpb.MsgHeartbeat.Enum(), From: new(codecWriter), To: new(codecReader),
			Term: new(uint64(4)), Commit: new(uint64(12)), Context: []byte("read-index ctx"),
		},
		"MsgVote": {
			Type: raftpb.MsgVote.Enum(), From: new(codecWriter), To: new(codecReader),
			Term: new(uint64(7)), LogTerm: new(uint64(6)), Index: new(uint64(40)),
		},
		"MsgAppResp reject": {
			Type: raftpb.MsgAppResp.Enum(), From: new(codecWriter), To: new(codecReader),
			Term: new(uint64(4)), Index: new(uint64(9)), Reject: new(true), RejectHint: new(uint64(5)),
		},
		"MsgSnap": {
			Type: raftpb.MsgSnap.Enum(), From: new(codecWriter), To: new(codecReader), Term: new(uint64(8)),
			Snapshot: &raftpb.Snapshot{
				Data: []byte(`{"a":"1","b":"2"}`),
				Metadata: &raftpb.SnapshotMetadata{
					Index:     new(uint64(100)),
					Term:      new(uint64(8)),
					ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
				},
			},
		},
	}
}

// writeCounter counts Write calls: each encode must be exactly one, so a
// failed write can never leave half a frame in front of the next one.
type writeCounter struct {
	bytes.Buffer
	writes int
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(b)
}

func TestMessageCodecRoundTrip(t *testing.T) {
	for name, m := range codecSamples() {
		t.Run(name, func(t *testing.T) {
			var w writeCounter
			enc := &messageEncoder{w: &w}
			if err := enc.encode(m); err != nil {
				t.Fatalf("encode: %v", err)
			}
			if w.writes != 1 {
				t.Errorf("encode made %d writes, want 1", w.writes)
			}
			if got, want := w.Len(), 8+proto.Size(m); got != want {
				t.Errorf("frame is %d bytes, want 8-byte length + %d-byte message", got, want-8)
			}
			// One byte at a time: a decoder that assumes a Read fills its
			// buffer would get this wrong.
			dec := &messageDecoder{r: iotest.OneByteReader(bytes.NewReader(w.Bytes()))}
			got, err := dec.decode()
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !proto.Equal(got, m) {
				t.Errorf("decoded %v, want %v", got, m)
			}
			if isLinkHeartbeat(got) {
				t.Errorf("%v taken for a link heartbeat", got)
			}
			if _, err := dec.decode(); err != io.EOF {
				t.Errorf("decode after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

// TestMessageCodecStream writes several messages and heartbeats into one
// stream, reusing the encoder's buffer, and reads them back in order.
func TestMessageCodecStream(t *testing.T) {
	samples := codecSamples()
	var sent []*raftpb.Message
	var buf bytes.Buffer
	enc := &messageEncoder{w: &buf}
	for _, name := range []string{"MsgSnap", "MsgHeartbeat", "", "MsgApp with entries", "", "MsgVote"} {
		if name == "" {
			if err := enc.heartbeat(); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			sent = append(sent, nil)
			continue
		}
		if err := enc.encode(samples[name]); err != nil {
			t.Fatalf("encode %s: %v", name, err)
		}
		sent = append(sent, samples[name])
	}
	dec := &messageDecoder{r: &buf}
	for i, want := range sent {
		got, err := dec.decode()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want == nil {
			if !isLinkHeartbeat(got) {
				t.Errorf("frame %d: %v, want a link heartbeat", i, got)
			}
			continue
		}
		if !proto.Equal(got, want) {
			t.Errorf("frame %d: %v, want %v", i, got, want)
		}
	}
	if _, err := dec.decode(); err != io.EOF {
		t.Errorf("decode after the last frame: %v, want io.EOF", err)
	}
}

func TestIsLinkHeartbeat(t *testing.T) {
	tests := []struct {
		name string
		m    *raftpb.Message
		want bool
	}{
		{"link heartbeat", linkHeartbeat(), true},
		{"raft heartbeat", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(2))}, false},
		{"heartbeat to someone", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), To: new(uint64(2))}, false},
		{"heartbeat from someone", &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1))}, false},
		// MsgHup is type 0: a decoder that forgot the type would see this.
		{"empty message", &raftpb.Message{}, false},
		{"heartbeat response", &raftpb.Message{Type: raftpb.MsgHeartbeatResp.Enum()}, false},
	}
	for _, tt := range tests {
		if got := isLinkHeartbeat(tt.m); got != tt.want {
			t.Errorf("%s: isLinkHeartbeat = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMsgAppCodecRoundTrip(t *testing.T) {
	// nil is a heartbeat. The MsgApps follow one another as a leader in
	// replicate state sends them, the case rafthttp shortens to 0x01 frames;
	// our encoder must still write them whole.
	sent := []*raftpb.Message{
		nil,
		codecMsgApp(5, 5, 10, 10, codecEntries(5, 11, 12)...),
		codecMsgApp(5, 5, 12, 11, codecEntries(5, 13)...),
		nil,
		nil,
		codecMsgApp(5, 5, 13, 13),
		codecMsgApp(6, 5, 13, 13, codecEntries(6, 14)...),
		nil,
	}
	var w writeCounter
	enc := &msgAppEncoder{w: &w}
	var starts []int
	for i, m := range sent {
		starts = append(starts, w.Len())
		writes := w.writes
		var err error
		if m == nil {
			err = enc.heartbeat()
		} else {
			err = enc.encode(m)
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if w.writes != writes+1 {
			t.Errorf("frame %d took %d writes, want 1", i, w.writes-writes)
		}
	}
	for i, at := range starts {
		want := msgAppMessage
		if sent[i] == nil {
			want = msgAppHeartbeat
		}
		if got := w.Bytes()[at]; got != want {
			t.Errorf("frame %d has type 0x%02x, want 0x%02x", i, got, want)
		}
	}

	var fast atomic.Uint64
	dec := &msgAppDecoder{r: iotest.HalfReader(bytes.NewReader(w.Bytes())), local: codecReader, remote: codecWriter, fastFrames: &fast}
	for i, want := range sent {
		got, err := dec.decode()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want == nil {
			if !isLinkHeartbeat(got) {
				t.Errorf("frame %d: %v, want a link heartbeat", i, got)
			}
			continue
		}
		if !proto.Equal(got, want) {
			t.Errorf("frame %d: %v, want %v", i, got, want)
		}
	}
	if _, err := dec.decode(); err != io.EOF {
		t.Errorf("decode after the last frame: %v, want io.EOF", err)
	}
	if n := fast.Load(); n != 0 {
		t.Errorf("fastFrames = %d after a stream without 0x01 frames", n)
	}
}

// Hand-built msgappv2 frames, written from the format rather than by the
// encoder under test: an etcd leader's stream has all three.

func frameHeartbeat() []byte { return []byte{msgAppHeartbeat} }

func frameMessage(t testing.TB, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := binary.BigEndian.AppendUint64([]byte{msgAppMessage}, uint64(len(b)))
	return append(out, b...)
}

func frameEntries(t testing.TB, commit uint64, entries ...*raftpb.Entry) []byte {
	t.Helper()
	out := binary.BigEndian.AppendUint64([]byte{msgAppEntries}, uint64(len(entries)))
	for _, e := range entries {
		b, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.BigEndian.AppendUint64(out, uint64(len(b)))
		out = append(out, b...)
	}
	return binary.BigEndian.AppendUint64(out, commit)
}

func TestMsgAppDecoderHandBuiltFrames(t *testing.T) {
	first := codecMsgApp(5, 5, 10, 10, codecEntries(5, 11, 12)...)
	newTerm := codecMsgApp(6, 5, 15, 15)
	// fromRemote is what a 0x01 frame must become: everything but the
	// entries and commit comes from the stream's ends and the last MsgApp.
	fromRemote := func(term, index, commit uint64, entries ...*raftpb.Entry) *raftpb.Message {
		return codecMsgApp(term, term, index, commit, entries...)
	}
	frames := []struct {
		name  string
		bytes []byte
		want  *raftpb.Message // nil: a link heartbeat
		fast  uint64          // fastFrames after this frame
	}{
		{"heartbeat", frameHeartbeat(), nil, 0},
		{"0x02 term 5 index 10 entries 11..12", frameMessage(t, first), first, 0},
		{"0x01 entries 13..14 commit 12", frameEntries(t, 12, codecEntries(5, 13, 14)...),
			fromRemote(5, 12, 12, codecEntries(5, 13, 14)...), 1},
		{"heartbeat between 0x01 frames", frameHeartbeat(), nil, 1},
		{"0x01 entry 15 continues from 14", frameEntries(t, 14, codecEntries(5, 15)...),
			fromRemote(5, 14, 14, codecEntries(5, 15)...), 2},
		{"0x01 without entries", frameEntries(t, 15), fromRemote(5, 15, 15), 3},
		// A 0x02 frame without entries sets the index from the message.
		{"0x02 new term, no entries", frameMessage(t, newTerm), newTerm, 3},
		{"0x01 in the new term", frameEntries(t, 16, codecEntries(6, 16)...),
			fromRemote(6, 15, 16, codecEntries(6, 16)...), 4},
	}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f.bytes...)
	}
	var fast atomic.Uint64
	dec := &msgAppDecoder{r: bytes.NewReader(stream), local: codecReader, remote: codecWriter, fastFrames: &fast}
	for _, f := range frames {
		got, err := dec.decode()
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		switch {
		case f.want == nil && !isLinkHeartbeat(got):
			t.Errorf("%s: decoded %v, want a link heartbeat", f.name, got)
		case f.want != nil && !proto.Equal(got, f.want):
			t.Errorf("%s:\n got %v\nwant %v", f.name, got, f.want)
		}
		if n := fast.Load(); n != f.fast {
			t.Errorf("%s: fastFrames = %d, want %d", f.name, n, f.fast)
		}
	}
	if _, err := dec.decode(); err != io.EOF {
		t.Errorf("decode after the last frame: %v, want io.EOF", err)
	}

	// The counter is optional: a decoder without one must decode the same.
	plain := &msgAppDecoder{r: bytes.NewReader(stream), local: codecReader, remote: codecWriter}
	for _, f := range frames {
		if _, err := plain.decode(); err != nil {
			t.Fatalf("without a counter, %s: %v", f.name, err)
		}
	}
}

func frameU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func frameCat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestDecodersRefuseMalformedFrames(t *testing.T) {
	// notProto fails to unmarshal as any message: a varint tag that never
	// ends.
	notProto := []byte{0xff, 0xff, 0xff}
	goodEntry := func() []byte {
		b, err := proto.Marshal(codecEntries(1, 1)[0])
		if err != nil {
			t.Fatal(err)
		}
		return frameCat(frameU64(uint64(len(b))), b)
	}()
	tests := []struct {
		name   string
		msgApp bool // which decoder
		input  []byte
	}{
		{"message: length over the limit", false, frameU64(maxMessageBytes + 1)},
		{"message: length 2^64-1", false, frameU64(math.MaxUint64)},
		{"message: not a protobuf", false, frameCat(frameU64(uint64(len(notProto))), notProto)},
		{"message: wire type 7", false, frameCat(frameU64(1), []byte{0x0f})},
		{"msgappv2: frame type 0x03", true, []byte{0x03}},
		{"msgappv2: frame type 0xff", true, []byte{0xff}},
		{"msgappv2: 0x02 length over the limit", true, frameCat([]byte{msgAppMessage}, frameU64(maxMessageBytes+1))},
		{"msgappv2: 0x02 not a protobuf", true, frameCat([]byte{msgAppMessage}, frameU64(uint64(len(notProto))), notProto)},
		{"msgappv2: 0x01 count over the bound", true, frameCat([]byte{msgAppEntries}, frameU64(maxMessageBytes/8+1))},
		{"msgappv2: 0x01 count 2^64-1", true, frameCat([]byte{msgAppEntries}, frameU64(math.MaxUint64))},
		{"msgappv2: 0x01 entry length over the limit", true, frameCat([]byte{msgAppEntries}, frameU64(2), goodEntry, frameU64(maxMessageBytes+1))},
		{"msgappv2: 0x01 entry not a protobuf", true, frameCat([]byte{msgAppEntries}, frameU64(2), goodEntry, frameU64(uint64(len(notProto))), notProto)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dec decoder = &messageDecoder{r: bytes.NewReader(tt.input)}
			if tt.msgApp {
				dec = &msgAppDecoder{r: bytes.NewReader(tt.input), local: codecReader, remote: codecWriter}
			}
			m, err := dec.decode()
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("decode = %v, %v; want an error wrapping ErrBadFrame", m, err)
			}
			if m != nil {
				t.Errorf("decode returned %v with its error", m)
			}
		})
	}
}

// TestDecodersTruncatedStreams cuts a valid stream at every byte. What
// decodes before the cut must be the frames that fit; then the decoder must
// say io.EOF if the cut falls between frames and io.ErrUnexpectedEOF inside
// one, so a stream that died mid-frame is never taken for one that ended.
func TestDecodersTruncatedStreams(t *testing.T) {
	samples := codecSamples()
	type frame struct {
		bytes []byte
		want  *raftpb.Message // nil: a link heartbeat
	}
	var heartbeat bytes.Buffer
	if err := (&messageEncoder{w: &heartbeat}).heartbeat(); err != nil {
		t.Fatal(err)
	}
	encodeMessage := func(m *raftpb.Message) frame {
		var b bytes.Buffer
		if err := (&messageEncoder{w: &b}).encode(m); err != nil {
			t.Fatal(err)
		}
		return frame{b.Bytes(), m}
	}
	first := codecMsgApp(5, 5, 10, 10, codecEntries(5, 11, 12)...)
	cont := codecMsgApp(5, 5, 12, 12, codecEntries(5, 13, 14)...)
	tests := []struct {
		name   string
		msgApp bool
		frames []frame
	}{
		{"message stream", false, []frame{
			encodeMessage(samples["MsgApp with entries"]),
			{heartbeat.Bytes(), nil},
			encodeMessage(samples["MsgSnap"]),
		}},
		{"msgappv2 stream", true, []frame{
			{frameHeartbeat(), nil},
			{frameMessage(t, first), first},
			{frameEntries(t, 12, codecEntries(5, 13, 14)...), cont},
			{frameHeartbeat(), nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stream []byte
			var starts []int
			ends := map[int]bool{0: true}
			for _, f := range tt.frames {
				starts = append(starts, len(stream))
				stream = append(stream, f.bytes...)
				ends[len(stream)] = true
			}
			// where names the frame a cut falls in, for the failure message.
			where := func(cut int) string {
				for i, f := range tt.frames {
					if cut >= starts[i] && cut < starts[i]+len(f.bytes) {
						s := fmt.Sprintf("%d bytes into frame %d", cut-starts[i], i)
						if tt.msgApp {
							s += fmt.Sprintf(" (type 0x%02x)", f.bytes[0])
						}
						return s
					}
				}
				return "at the end"
			}
			var wrong []string
			for cut := 0; cut <= len(stream); cut++ {
				r := bytes.NewReader(stream[:cut])
				var dec decoder = &messageDecoder{r: r}
				if tt.msgApp {
					dec = &msgAppDecoder{r: r, local: codecReader, remote: codecWriter}
				}
				var err error
				decoded := 0
				for ; ; decoded++ {
					var m *raftpb.Message
					if m, err = dec.decode(); err != nil {
						break
					}
					if decoded >= len(tt.frames) {
						t.Fatalf("cut at %d: decoded more frames than were written", cut)
					}
					want := tt.frames[decoded].want
					if (want == nil && !isLinkHeartbeat(m)) || (want != nil && !proto.Equal(m, want)) {
						t.Fatalf("cut at %d: frame %d decoded as %v, want %v", cut, decoded, m, want)
					}
				}
				whole := 0
				for end := range ends {
					if end > 0 && end <= cut {
						whole++
					}
				}
				if decoded != whole {
					t.Errorf("cut at %d: decoded %d frames, want the %d that fit", cut, decoded, whole)
				}
				wantErr := io.ErrUnexpectedEOF
				if ends[cut] {
					wantErr = io.EOF
				}
				if err != wantErr {
					wrong = append(wrong, fmt.Sprintf("cut at byte %d, %s: %v, want %v", cut, where(cut), err, wantErr))
				}
			}
			for _, w := range wrong {
				t.Error(w)
			}
		})
	}
}
