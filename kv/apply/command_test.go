package apply

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/raftkv/node/messages"
)

func TestCommandRoundTrip(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	cases := []struct {
		name string
		cmd  Command
	}{
		{"put", Command{Op: OpPut, ReqID: 7, Key: "k", Value: []byte("v")}},
		{"put empty value", Command{Op: OpPut, ReqID: 2, Key: "k", Value: nil}},
		{"put binary", Command{Op: OpPut, ReqID: 1 << 63, Key: "\x00\xff\x80\x01k", Value: []byte{0, 0xff, 0x80, 1, 0}}},
		{"put key of 200 bytes", Command{Op: OpPut, ReqID: 3, Key: strings.Repeat("k", 200), Value: []byte("v")}},
		{"put large value", Command{Op: OpPut, ReqID: math.MaxUint64, Key: "big", Value: large}},
		{"delete", Command{Op: OpDelete, ReqID: 9, Key: "k"}},
		{"delete binary key", Command{Op: OpDelete, ReqID: math.MaxUint64, Key: "\x00\xff"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.cmd.encode()
			got, err := decodeCommand(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Op != c.cmd.Op || got.ReqID != c.cmd.ReqID || got.Key != c.cmd.Key || !bytes.Equal(got.Value, c.cmd.Value) {
				t.Fatalf("decoded %+v, want %+v", brief(got), brief(c.cmd))
			}
			if again := got.encode(); !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs: %x, want %x", again, data)
			}
		})
	}
}

// brief keeps a failure message readable when a value is large.
func brief(c Command) Command {
	if len(c.Value) > 32 {
		c.Value = c.Value[:32]
	}
	return c
}

func TestDecodeCommandMalformed(t *testing.T) {
	valid := Command{Op: OpPut, ReqID: 300, Key: "key", Value: []byte("value")}.encode()
	cases := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"op zero", []byte{0, 1, 0}},
		{"unknown op", []byte{3, 1, 0}},
		{"op 0xff", []byte{0xff, 1, 0}},
		{"op only", []byte{byte(OpPut)}},
		{"truncated request id", []byte{byte(OpPut), 0x80}},
		{"truncated request id, long", []byte{byte(OpDelete), 0xff, 0xff, 0xff}},
		{"request id overflows 64 bits", append([]byte{byte(OpPut)}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0)},
		{"no key length", []byte{byte(OpPut), 1}},
		{"truncated key length", []byte{byte(OpPut), 1, 0x80}},
		{"key length overflows 64 bits", append([]byte{byte(OpPut), 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)},
		{"key length past the end", []byte{byte(OpPut), 1, 4, 'a', 'b', 'c'}},
		{"key length far past the end", []byte{byte(OpPut), 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}},
		{"key length max uint64", binary.AppendUvarint([]byte{byte(OpPut), 1}, math.MaxUint64)},
		{"delete with a value", append(Command{Op: OpDelete, ReqID: 1, Key: "k"}.encode(), 'v')},
		{"delete with a zero byte value", append(Command{Op: OpDelete, ReqID: 1, Key: "k"}.encode(), 0)},
		// The API refuses empty keys and the db cannot hold one: an entry
		// with one must be refused before any member applies it.
		{"put with an empty key", Command{Op: OpPut, ReqID: 1, Key: "", Value: []byte("v")}.encode()},
		{"delete with an empty key", Command{Op: OpDelete, ReqID: 1, Key: ""}.encode()},
		{"valid put truncated in its header", valid[:3]},
		// encode writes minimal varints; a longer spelling of the same number
		// gives one command several encodings, so decode would accept bytes
		// that encode never writes.
		{"request id varint not minimal", []byte{byte(OpPut), 0x81, 0x00, 1, 'k', 'v'}},
		{"key length varint not minimal", []byte{byte(OpPut), 1, 0x81, 0x00, 'k', 'v'}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeCommand(c.data)
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeCommand(%x) = %+v, %v; want an error wrapping ErrBadCommand", c.data, got, err)
			}
			if got.Op != 0 || got.ReqID != 0 || got.Key != "" || got.Value != nil {
				t.Fatalf("decodeCommand(%x) returned a command with an error: %+v", c.data, got)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	seeds := []Command{
		{Op: OpPut, ReqID: 1, Key: "k", Value: []byte("v")},
		{Op: OpPut, ReqID: math.MaxUint64, Key: "k", Value: nil},
		{Op: OpPut, ReqID: 1 << 40, Key: "\x00\xff", Value: []byte{0, 0xff}},
		{Op: OpDelete, ReqID: 300, Key: "key"},
		{Op: OpPut, ReqID: 2, Key: "k", Value: []byte("v"), Lease: 7},
		{Op: OpPut, ReqID: 3, Key: "k", Lease: math.MaxInt64},
		leaseCommand(OpLeaseGrant, 1, 10, 0),
		leaseCommand(OpLeaseGrant, math.MaxInt64, messages.MaxLeaseTTL, 0),
		leaseCommand(OpLeaseRevoke, 300, 0, 0),
		leaseCommand(OpLeaseRevoke, 300, 0, 7),
		leaseCommand(OpLeaseCheckpoint, 5, 0, 3),
		leaseCommand(OpLeaseCheckpoint, 5, 1<<20, 0),
	}
	for _, c := range seeds {
		f.Add(c.encode())
	}
	f.Add(compactData(7, 300))
	f.Add(compactData(1, math.MaxUint64))
	f.Add([]byte{byte(OpCompact), 1, 0, 0})                     // revision 0
	f.Add([]byte{byte(OpPutLease), 1, 1, 'k', 0, 'v'})          // lease 0: spelt OpPut
	f.Add([]byte{byte(OpPutLease), 1, 1, 'k', 0x81, 0x00, 'v'}) // lease 1 spelt in two bytes
	f.Add([]byte{byte(OpLeaseGrant), 1, 0, 1, 0})               // TTL 0
	f.Add([]byte{byte(OpLeaseRevoke), 1, 0, 1, 0})              // a trailing byte
	f.Add([]byte{})
	f.Add([]byte{byte(OpDelete), 1, 0, 'x'})
	f.Add([]byte{byte(OpPut), 0x80})
	f.Add([]byte{byte(OpPut), 0x81, 0x00, 1, 'k', 'v'}) // request id 1 spelled in two bytes
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		c, err := decodeCommand(data)
		if !bytes.Equal(data, orig) {
			t.Fatalf("decodeCommand modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if c.Op == OpDelete && len(c.Value) != 0 {
			t.Fatalf("decoded a delete with a Value: %+v", c)
		}
		switch c.Op {
		case OpLeaseGrant, OpLeaseRevoke, OpLeaseCheckpoint:
			if id, n, _, err := decodeLeaseOp(c); err != nil || id <= 0 || id != c.Lease || n < 0 || n > messages.MaxLeaseTTL {
				t.Fatalf("decoded a lease operation %+v: %d, %d, %v", c, id, n, err)
			}
		case OpPut:
			if c.Lease < 0 {
				t.Fatalf("decoded a put with lease %d", c.Lease)
			}
		default:
			if c.Lease != 0 {
				t.Fatalf("decoded a lease %d on op %d", c.Lease, c.Op)
			}
		}
		if again := c.encode(); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v re-encodes to %x, want %x", c, again, data)
		}
	})
}
