package apply

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
// (a transaction, OpTxn in txn.go, has no key and its encoding as value;
// a put with a lease is spelt OpPutLease, its lease after the key; the
// lease operations, lease.go, and a compaction, OpCompact in compact.go,
// have no key and their fields as value)
// A compact binary form keeps entries small (the WAL and every follower pay
// for each byte) and decodes without reflection.
type Command struct {
	Op    Op
	ReqID uint64
	Key   string
	Value []byte
	// Lease is the lease the command names: a put's (0: none, and the key
	// is detached from the lease it had), or the one a lease operation
	// grants, revokes or checkpoints. A lease operation's Value holds its
	// id too, and is what is encoded: Lease is set from it when decoded,
	// and by the constructors (propose.go), so that a reader of a command
	// need not decode its value to know the lease.
	Lease int64
	// Term is a lessor's revocation's or checkpoint's fence (lease.go): 0
	// for none.
	Term uint64
}

func (c Command) encode() []byte {
	op := c.Op
	if op == OpPut && c.Lease != 0 {
		op = OpPutLease
	}
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(c.Key)+len(c.Value))
	b = append(b, byte(op))
	b = binary.AppendUvarint(b, c.ReqID)
	b = binary.AppendUvarint(b, uint64(len(c.Key)))
	b = append(b, c.Key...)
	if op == OpPutLease {
		b = binary.AppendUvarint(b, uint64(c.Lease))
	}
	return append(b, c.Value...)
}

// decodeCommand parses an entry's data. The returned value aliases data.
func decodeCommand(data []byte) (Command, error) {
	if len(data) < 1 {
		return Command{}, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	c := Command{Op: Op(data[0])}
	switch c.Op {
	case OpPut, OpDelete, OpAttrs, OpTxn, OpPutLease, OpLeaseGrant, OpLeaseRevoke, OpLeaseCheckpoint, OpCompact:
	default:
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
	if c.Op == OpPutLease {
		lease, n, ok := minimalUvarint(c.Value)
		if !ok || lease == 0 || lease > math.MaxInt64 {
			// 0 is spelt OpPut: one encoding per command.
			return Command{}, fmt.Errorf("%w: a put's lease", ErrBadCommand)
		}
		c.Op, c.Lease, c.Value = OpPut, int64(lease), c.Value[n:]
	}
	if c.Op == OpDelete && len(c.Value) != 0 {
		return Command{}, fmt.Errorf("%w: delete with a value", ErrBadCommand)
	}
	switch {
	case keyless(c.Op) && c.Key != "":
		// A transaction's keys are in its value; a lease operation and a
		// compaction name none.
		return Command{}, fmt.Errorf("%w: op %d with a key", ErrBadCommand, c.Op)
	case c.Op != OpAttrs && !keyless(c.Op) && c.Key == "":
		// The API refuses empty keys, and the db cannot hold one.
		return Command{}, fmt.Errorf("%w: empty key", ErrBadCommand)
	}
	switch c.Op {
	case OpAttrs:
		if _, _, err := decodeAttrs(c); err != nil {
			return Command{}, err
		}
	case OpLeaseGrant, OpLeaseRevoke, OpLeaseCheckpoint:
		id, _, term, err := decodeLeaseOp(c)
		if err != nil {
			return Command{}, err
		}
		c.Lease, c.Term = id, term
	case OpCompact:
		if _, err := decodeCompact(c); err != nil {
			return Command{}, err
		}
	}
	return c, nil
}

// keyless says whether an op's commands have an empty key.
func keyless(op Op) bool {
	return op == OpTxn || op == OpLeaseGrant || op == OpLeaseRevoke || op == OpLeaseCheckpoint || op == OpCompact
}

// minimalUvarint reads a uvarint from the front of b, only in its
// shortest form, so that each value has one encoding; n is its length.
func minimalUvarint(b []byte) (v uint64, n int, ok bool) {
	v, n = binary.Uvarint(b)
	return v, n, n > 0 && n == wire.UvarintLen(v)
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
