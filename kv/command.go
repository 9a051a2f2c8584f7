package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// op is the kind of a command in a log entry.
type op byte

const (
	opPut    op = 1
	opDelete op = 2
	// opAttrs publishes a member's client URLs: the key is its id in
	// decimal, the value its URLs, one per line. Each member proposes its
	// own once it runs, as etcd members publish their attributes.
	opAttrs op = 4
)

// ErrBadCommand is returned when a log entry does not decode as a command.
// Such an entry is refused when applied, alike on every member (refuse.go),
// and the raft actor turns away a peer's proposal of one (Actor.ValidEntry).
var ErrBadCommand = errors.New("malformed command")

// command is one state machine operation as stored in a raft entry:
//
//	op (1 byte) | request id (uvarint) | key length (uvarint) | key | value
//
// (a transaction, opTxn in txn.go, has no key and its encoding as value)
// A compact binary form keeps entries small (the WAL and every follower pay
// for each byte) and decodes without reflection.
type command struct {
	op    op
	reqID uint64
	key   string
	value []byte
}

func (c command) encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.key)+len(c.value))
	b = append(b, byte(c.op))
	b = binary.AppendUvarint(b, c.reqID)
	b = binary.AppendUvarint(b, uint64(len(c.key)))
	b = append(b, c.key...)
	return append(b, c.value...)
}

// decodeCommand parses an entry's data. The returned value aliases data.
func decodeCommand(data []byte) (command, error) {
	if len(data) < 1 {
		return command{}, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	c := command{op: op(data[0])}
	if c.op != opPut && c.op != opDelete && c.op != opAttrs && c.op != opTxn {
		return command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, data[0])
	}
	rest := data[1:]
	id, n := binary.Uvarint(rest)
	if n <= 0 || n != uvarintLen(id) {
		return command{}, fmt.Errorf("%w: request id", ErrBadCommand)
	}
	rest = rest[n:]
	klen, n := binary.Uvarint(rest)
	if n <= 0 || n != uvarintLen(klen) || klen > uint64(len(rest)-n) {
		return command{}, fmt.Errorf("%w: key length", ErrBadCommand)
	}
	rest = rest[n:]
	c.reqID = id
	c.key = string(rest[:klen])
	c.value = rest[klen:]
	if c.op == opDelete && len(c.value) != 0 {
		return command{}, fmt.Errorf("%w: delete with a value", ErrBadCommand)
	}
	switch {
	case c.op == opTxn && c.key != "":
		// Its keys are in its value.
		return command{}, fmt.Errorf("%w: a transaction with a key", ErrBadCommand)
	case c.op != opAttrs && c.op != opTxn && c.key == "":
		// The API refuses empty keys, and the db cannot hold one.
		return command{}, fmt.Errorf("%w: empty key", ErrBadCommand)
	}
	if c.op == opAttrs {
		if _, _, err := decodeAttrs(c); err != nil {
			return command{}, err
		}
	}
	return c, nil
}

// attrsCommand is member id's publication of its client URLs.
func attrsCommand(id uint64, urls []string) command {
	return command{op: opAttrs, key: strconv.FormatUint(id, 10), value: []byte(strings.Join(urls, "\n"))}
}

// decodeAttrs reads an opAttrs command.
func decodeAttrs(c command) (uint64, []string, error) {
	id, err := strconv.ParseUint(c.key, 10, 64)
	if err != nil || id == 0 {
		return 0, nil, fmt.Errorf("%w: a member id of %d bytes that is not a decimal id", ErrBadCommand, len(c.key))
	}
	urls := []string{}
	if len(c.value) > 0 {
		urls = strings.Split(string(c.value), "\n")
	}
	return id, urls, nil
}

// uvarintLen is the length of v's shortest uvarint encoding. Decoding accepts
// only that one, so a command has exactly one encoding.
func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
