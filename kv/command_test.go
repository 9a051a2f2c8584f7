package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	cases := []struct {
		name string
		cmd  command
	}{
		{"put", command{op: opPut, reqID: 7, key: "k", value: []byte("v")}},
		{"put empty value", command{op: opPut, reqID: 2, key: "k", value: nil}},
		{"put binary", command{op: opPut, reqID: 1 << 63, key: "\x00\xff\x80\x01k", value: []byte{0, 0xff, 0x80, 1, 0}}},
		{"put key of 200 bytes", command{op: opPut, reqID: 3, key: strings.Repeat("k", 200), value: []byte("v")}},
		{"put large value", command{op: opPut, reqID: math.MaxUint64, key: "big", value: large}},
		{"delete", command{op: opDelete, reqID: 9, key: "k"}},
		{"delete binary key", command{op: opDelete, reqID: math.MaxUint64, key: "\x00\xff"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.cmd.encode()
			got, err := decodeCommand(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.op != c.cmd.op || got.reqID != c.cmd.reqID || got.key != c.cmd.key || !bytes.Equal(got.value, c.cmd.value) {
				t.Fatalf("decoded %+v, want %+v", brief(got), brief(c.cmd))
			}
			if again := got.encode(); !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs: %x, want %x", again, data)
			}
		})
	}
}

// brief keeps a failure message readable when a value is large.
func brief(c command) command {
	if len(c.value) > 32 {
		c.value = c.value[:32]
	}
	return c
}

func TestDecodeCommandMalformed(t *testing.T) {
	valid := command{op: opPut, reqID: 300, key: "key", value: []byte("value")}.encode()
	cases := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"op zero", []byte{0, 1, 0}},
		{"unknown op", []byte{3, 1, 0}},
		{"op 0xff", []byte{0xff, 1, 0}},
		{"op only", []byte{byte(opPut)}},
		{"truncated request id", []byte{byte(opPut), 0x80}},
		{"truncated request id, long", []byte{byte(opDelete), 0xff, 0xff, 0xff}},
		{"request id overflows 64 bits", append([]byte{byte(opPut)}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0)},
		{"no key length", []byte{byte(opPut), 1}},
		{"truncated key length", []byte{byte(opPut), 1, 0x80}},
		{"key length overflows 64 bits", append([]byte{byte(opPut), 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)},
		{"key length past the end", []byte{byte(opPut), 1, 4, 'a', 'b', 'c'}},
		{"key length far past the end", []byte{byte(opPut), 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a'}},
		{"key length max uint64", binary.AppendUvarint([]byte{byte(opPut), 1}, math.MaxUint64)},
		{"delete with a value", append(command{op: opDelete, reqID: 1, key: "k"}.encode(), 'v')},
		{"delete with a zero byte value", append(command{op: opDelete, reqID: 1, key: "k"}.encode(), 0)},
		// The API refuses empty keys and the db cannot hold one: an entry
		// with one must be refused before any member applies it.
		{"put with an empty key", command{op: opPut, reqID: 1, key: "", value: []byte("v")}.encode()},
		{"delete with an empty key", command{op: opDelete, reqID: 1, key: ""}.encode()},
		{"valid put truncated in its header", valid[:3]},
		// encode writes minimal varints; a longer spelling of the same number
		// gives one command several encodings, so decode would accept bytes
		// that encode never writes.
		{"request id varint not minimal", []byte{byte(opPut), 0x81, 0x00, 1, 'k', 'v'}},
		{"key length varint not minimal", []byte{byte(opPut), 1, 0x81, 0x00, 'k', 'v'}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeCommand(c.data)
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeCommand(%x) = %+v, %v; want an error wrapping ErrBadCommand", c.data, got, err)
			}
			if got.op != 0 || got.reqID != 0 || got.key != "" || got.value != nil {
				t.Fatalf("decodeCommand(%x) returned a command with an error: %+v", c.data, got)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	seeds := []command{
		{op: opPut, reqID: 1, key: "k", value: []byte("v")},
		{op: opPut, reqID: math.MaxUint64, key: "k", value: nil},
		{op: opPut, reqID: 1 << 40, key: "\x00\xff", value: []byte{0, 0xff}},
		{op: opDelete, reqID: 300, key: "key"},
	}
	for _, c := range seeds {
		f.Add(c.encode())
	}
	f.Add([]byte{})
	f.Add([]byte{byte(opDelete), 1, 0, 'x'})
	f.Add([]byte{byte(opPut), 0x80})
	f.Add([]byte{byte(opPut), 0x81, 0x00, 1, 'k', 'v'}) // request id 1 spelled in two bytes
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
		if c.op == opDelete && len(c.value) != 0 {
			t.Fatalf("decoded a delete with a value: %+v", c)
		}
		if again := c.encode(); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v re-encodes to %x, want %x", c, again, data)
		}
	})
}
