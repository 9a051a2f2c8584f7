package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrBadFrame is a stream frame that does not decode: an unknown frame
// type, a length over the limit, or a message that is not a raftpb
// protobuf. The stream that carried it is closed and dialled again.
var ErrBadFrame = errors.New("malformed peer frame")

// The frame types of a msgappv2 stream.
const (
	msgAppHeartbeat byte = 0x00 // link heartbeat, no body
	msgAppEntries   byte = 0x01 // a MsgApp continuing the previous one: count | (len | entry)… | commit
	msgAppMessage   byte = 0x02 // any MsgApp: len | message
)

// linkHeartbeat is the message stream's keep-alive: a MsgHeartbeat from and
// to no one, which raft would never send.
func linkHeartbeat() *raftpb.Message { return &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum()} }

func isLinkHeartbeat(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MsgHeartbeat && m.GetFrom() == 0 && m.GetTo() == 0
}

// encoder writes one stream's frames. Each call writes one whole frame with
// a single Write, so a failed write never leaves half a frame buffered
// behind a later good one.
type encoder interface {
	encode(m *raftpb.Message) error
	heartbeat() error
}

// messageEncoder writes the message stream: 8-byte big-endian length, then
// the marshalled message.
type messageEncoder struct {
	w   io.Writer
	buf []byte
}

func (e *messageEncoder) encode(m *raftpb.Message) error {
	b, err := appendSized(e.buf[:0], m)
	if err != nil {
		return err
	}
	e.buf = b
	_, err = e.w.Write(b)
	return err
}

func (e *messageEncoder) heartbeat() error { return e.encode(linkHeartbeat()) }

// msgAppEncoder writes the msgappv2 stream. It uses only the heartbeat and
// whole-message frames: the 0x01 frame saves a few header bytes per MsgApp
// at the price of state that must match the decoder's exactly.
type msgAppEncoder struct {
	w   io.Writer
	buf []byte
}

func (e *msgAppEncoder) encode(m *raftpb.Message) error {
	b, err := appendSized(append(e.buf[:0], msgAppMessage), m)
	if err != nil {
		return err
	}
	e.buf = b
	_, err = e.w.Write(b)
	return err
}

func (e *msgAppEncoder) heartbeat() error {
	_, err := e.w.Write([]byte{msgAppHeartbeat})
	return err
}

// appendSized appends m's size as 8 bytes big-endian, then m.
func appendSized(b []byte, m *raftpb.Message) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, uint64(proto.Size(m)))
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return nil, fmt.Errorf("marshal %v: %w", m.GetType(), err)
	}
	return b, nil
}

// decoder reads one stream's frames. A link heartbeat decodes as
// linkHeartbeat(); the caller drops it.
type decoder interface {
	decode() (*raftpb.Message, error)
}

// messageDecoder reads the message stream.
type messageDecoder struct {
	r io.Reader
}

func (d *messageDecoder) decode() (*raftpb.Message, error) {
	b, err := readSized(d.r)
	if err != nil {
		return nil, err
	}
	return unmarshalMessage(b)
}

// msgAppDecoder reads the msgappv2 stream. A 0x01 frame carries only
// entries and a commit index; the rest of the MsgApp is implied by the
// previous MsgApp on the stream, which is why the decoder keeps its term and
// last index, and why it must know both ends of the stream.
type msgAppDecoder struct {
	r             io.Reader
	local, remote uint64
	term, index   uint64
	fastFrames    *atomic.Uint64 // counts 0x01 frames; may be nil
}

func (d *msgAppDecoder) decode() (*raftpb.Message, error) {
	var typ [1]byte
	if _, err := io.ReadFull(d.r, typ[:]); err != nil {
		return nil, err
	}
	switch typ[0] {
	case msgAppHeartbeat:
		return linkHeartbeat(), nil
	case msgAppEntries:
		m, err := d.decodeEntries()
		if err != nil {
			return nil, midFrame(err)
		}
		if d.fastFrames != nil {
			d.fastFrames.Add(1)
		}
		return m, nil
	case msgAppMessage:
		b, err := readSized(d.r)
		if err != nil {
			return nil, midFrame(err)
		}
		m, err := unmarshalMessage(b)
		if err != nil {
			return nil, err
		}
		d.term, d.index = m.GetTerm(), m.GetIndex()
		if n := len(m.GetEntries()); n > 0 {
			d.index = m.GetEntries()[n-1].GetIndex()
		}
		return m, nil
	default:
		return nil, fmt.Errorf("%w: unknown msgappv2 frame type %d", ErrBadFrame, typ[0])
	}
}

func (d *msgAppDecoder) decodeEntries() (*raftpb.Message, error) {
	m := &raftpb.Message{
		Type:    raftpb.MsgApp.Enum(),
		From:    new(d.remote),
		To:      new(d.local),
		Term:    new(d.term),
		LogTerm: new(d.term),
		Index:   new(d.index),
	}
	count, err := readUint64(d.r)
	if err != nil {
		return nil, err
	}
	// The count is untrusted: grow the slice as entries arrive instead of
	// allocating what it claims. Every entry costs at least its 8-byte
	// length, so the frame limit bounds the count too.
	if count > maxMessageBytes/8 {
		return nil, fmt.Errorf("%w: %d entries in one frame", ErrBadFrame, count)
	}
	m.Entries = make([]*raftpb.Entry, 0, min(count, 1024))
	for range count {
		b, err := readSized(d.r)
		if err != nil {
			return nil, err
		}
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(b, e); err != nil {
			return nil, fmt.Errorf("%w: entry: %w", ErrBadFrame, err)
		}
		m.Entries = append(m.Entries, e)
		d.index++
	}
	commit, err := readUint64(d.r)
	if err != nil {
		return nil, err
	}
	m.Commit = new(commit)
	return m, nil
}

func readUint64(r io.Reader) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// readSized reads an 8-byte big-endian length and that many bytes. It
// returns io.EOF only if the stream ended before the length.
func readSized(r io.Reader) ([]byte, error) {
	n, err := readUint64(r)
	if err != nil {
		return nil, err
	}
	if n > maxMessageBytes {
		return nil, fmt.Errorf("%w: length %d over the %d-byte limit", ErrBadFrame, n, maxMessageBytes)
	}
	if n <= trustedLength {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, midFrame(err)
		}
		return b, nil
	}
	// A large length is only a claim: let the buffer grow with the bytes
	// that actually arrive, so eight bytes cannot reserve 512 MiB.
	var buf bytes.Buffer
	buf.Grow(trustedLength)
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		return nil, midFrame(err)
	}
	return buf.Bytes(), nil
}

// trustedLength is the largest claimed length allocated before its bytes
// arrive: every ordinary message is smaller, and 1 MiB is MaxSizePerMsg.
const trustedLength = 1 << 20

// midFrame reports a stream that ended inside a frame as truncated: only
// an end between frames is a clean io.EOF.
func midFrame(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func unmarshalMessage(b []byte) (*raftpb.Message, error) {
	m := &raftpb.Message{}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, nil
}
