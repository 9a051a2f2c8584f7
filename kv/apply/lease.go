package apply

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/raftkv/node/messages"
)

// Leases in entries, with etcd's semantics. A put with a lease is its own
// op, so that a put without one stays byte for byte what it was:
//
//	OpPutLease | request id | key length | key | lease | value
//
// (decoded, an OpPut command with its Lease set). The lease operations
// have no key; their value is uvarint-framed, each integer in its shortest
// form and nothing after the last, so that each command has one encoding:
//
//	OpLeaseGrant       id | TTL (seconds, 1 to messages.MaxLeaseTTL)
//	OpLeaseRevoke      id | term
//	OpLeaseCheckpoint  id | remaining TTL (seconds, 0 to messages.MaxLeaseTTL) | term
//
// A decoded lease operation has its id in Command.Lease as well, and its
// term in Command.Term.
//
// The term fences what a leader's lessor decides from its deadlines: the
// revocation of a lease it found expired, a checkpoint of a remaining TTL.
// Such a command is applied only from an entry of the term it names, the
// term in which that member led: a leader that was deposed without knowing
// it (paused, cut off) decides from deadlines the new leader no longer
// keeps, and its proposal, forwarded again to the new leader (the kv
// actor proposes what it had in flight again after a leader change), is
// then appended in a later term and skipped, alike on every member. A
// client's revocation names term 0: it applies whenever it commits.
//
// Lease ids are 1 to math.MaxInt64 (etcd's int64 ids, 0 meaning none). A
// value out of these bounds does not decode (ErrBadCommand): the commands
// that propose them (propose.go) refuse it, so only a bug or a forged
// entry holds one, and it is refused alike on every member.
const (
	OpPutLease        Op = 6
	OpLeaseGrant      Op = 7
	OpLeaseRevoke     Op = 8
	OpLeaseCheckpoint Op = 9
)

// LeaseChange is a grant or a revocation an entry applied, for the kv
// actor's lessor, which keeps the leader's deadlines of the leases the
// state holds. Checkpoints are not listed: they change no deadline the
// leader keeps (its own deadline is what they record), and a member that
// becomes leader reads them from the state (store.Store.Leases).
type LeaseChange struct {
	ID  int64
	TTL int64 // a grant's TTL
	// Revoked says the lease was revoked (its keys deleted), not granted.
	Revoked bool
}

// leaseCommand is a lease operation on lease id; n is a grant's TTL or a
// checkpoint's remaining TTL, term the fence of a revocation or a
// checkpoint.
func leaseCommand(op Op, id, n int64, term uint64) Command {
	v := binary.AppendUvarint(nil, uint64(id))
	if op != OpLeaseRevoke {
		v = binary.AppendUvarint(v, uint64(n))
	}
	if op != OpLeaseGrant {
		v = binary.AppendUvarint(v, term)
	}
	return Command{Op: op, Value: v, Lease: id, Term: term}
}

// decodeLeaseOp reads a lease operation's value: the lease id, a grant's
// TTL or a checkpoint's remaining TTL (0 for a revocation), and the fence
// of a revocation or a checkpoint.
func decodeLeaseOp(c Command) (id, n int64, term uint64, err error) {
	b := c.Value
	v, k, ok := minimalUvarint(b)
	if !ok || v == 0 || v > math.MaxInt64 {
		return 0, 0, 0, fmt.Errorf("%w: op %d: lease id", ErrBadCommand, c.Op)
	}
	id, b = int64(v), b[k:]
	if c.Op != OpLeaseRevoke {
		v, k, ok = minimalUvarint(b)
		least := uint64(0) // a checkpoint's remaining TTL may be 0: cleared
		if c.Op == OpLeaseGrant {
			least = 1
		}
		if !ok || v < least || v > messages.MaxLeaseTTL {
			return 0, 0, 0, fmt.Errorf("%w: op %d: TTL out of range", ErrBadCommand, c.Op)
		}
		n, b = int64(v), b[k:]
	}
	if c.Op != OpLeaseGrant {
		if term, k, ok = minimalUvarint(b); !ok {
			return 0, 0, 0, fmt.Errorf("%w: op %d: term", ErrBadCommand, c.Op)
		}
		b = b[k:]
	}
	if len(b) != 0 {
		return 0, 0, 0, fmt.Errorf("%w: op %d: %d trailing bytes", ErrBadCommand, c.Op, len(b))
	}
	return id, n, term, nil
}
