package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/raftkv/node/kv/internal/wire"
)

// Op is the kind of a command in a log entry.
type Op byte

const (
	OpPut    Op = 1
	OpDelete Op = 2
	// OpAttrs publishes a member's client URLs: the key is its id in
	// decimal, the value its URLs, one per line. Each member proposes its
	// own once it runs, as etcd members publish their attributes.
	OpAttrs Op = 4
)

// ErrBadCommand is returned when a log entry does not decode as a command.
// Such an entry is refused when applied, alike on every member (refuse.go),
// and the raft actor turns away a peer's proposal of one (Applier.ValidEntry, through kv.Actor.ValidEntry).
var ErrBadCommand = errors.New("malformed command")

// Command is one state machine operation as stored in a raft entry:
//
//	op (1 byte) | request id (uvarint) | key length (uvarint) | key | value
//
// (a transaction, OpTxn in txn.go, has no key and its encoding as value)
// A compact binary form keeps entries small (the WAL and every follower pay
// for each byte) and decodes without reflection.
type Command struct {
	Op    Op
	ReqID uint64
	Key   string
	Value []byte
}

func (c Command) encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.Key)+len(c.Value))
	b = append(b, byte(c.Op))
	b = binary.AppendUvarint(b, c.ReqID)
	b = binary.AppendUvarint(b, uint64(len(c.Key)))
	b = append(b, c.Key...)
	return append(b, c.Value...)
}

// decodeCommand parses an entry's data. The returned value aliases data.
func decodeCommand(data []byte) (Command, error) {
	if len(data) < 1 {
		return Command{}, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	c := Command{Op: Op(data[0])}
	if c.Op != OpPut && c.Op != OpDelete && c.Op != OpAttrs && c.Op != OpTxn {
		return Command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, data[0])
	}
	rest := data[1:]
	id, n := binary.Uvarint(rest)
	if n <= 0 || n != wire.UvarintLen(id) {
		return Command{}, fmt.Errorf("%w: request id", ErrBadCommand)
	}
	rest = rest[n:]
	klen, n := binary.Uvarint(rest)
	if n <= 0 || n != wire.UvarintLen(klen) || klen > uint64(len(rest)-n) {
		return Command{}, fmt.Errorf("%w: key length", ErrBadCommand)
	}
	rest = rest[n:]
	c.ReqID = id
	c.Key = string(rest[:klen])
	c.Value = rest[klen:]
	if c.Op == OpDelete && len(c.Value) != 0 {
		return Command{}, fmt.Errorf("%w: delete with a value", ErrBadCommand)
	}
	switch {
	case c.Op == OpTxn && c.Key != "":
		// Its keys are in its value.
		return Command{}, fmt.Errorf("%w: a transaction with a key", ErrBadCommand)
	case c.Op != OpAttrs && c.Op != OpTxn && c.Key == "":
		// The API refuses empty keys, and the db cannot hold one.
		return Command{}, fmt.Errorf("%w: empty key", ErrBadCommand)
	}
	if c.Op == OpAttrs {
		if _, _, err := decodeAttrs(c); err != nil {
			return Command{}, err
		}
	}
	return c, nil
}

// attrsCommand is member id's publication of its client URLs.
func attrsCommand(id uint64, urls []string) Command {
	return Command{Op: OpAttrs, Key: strconv.FormatUint(id, 10), Value: []byte(strings.Join(urls, "\n"))}
}

// decodeAttrs reads an OpAttrs command.
func decodeAttrs(c Command) (uint64, []string, error) {
	id, err := strconv.ParseUint(c.Key, 10, 64)
	if err != nil || id == 0 {
		return 0, nil, fmt.Errorf("%w: a member id of %d bytes that is not a decimal id", ErrBadCommand, len(c.Key))
	}
	urls := []string{}
	if len(c.Value) > 0 {
		urls = strings.Split(string(c.Value), "\n")
	}
	return id, urls, nil
}
