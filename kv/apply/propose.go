package apply

import (
	"fmt"

	"github.com/raftkv/node/messages"
)

// The constructors below are the last door before raft: each checks a
// client's write against the API's limits (refuse.go) and returns the
// command to encode and propose. What they refuse is never proposed.

// ProposePut is the command of a put, attached to lease (0: none, which
// detaches the key from the lease it had). A negative lease is never
// granted: messages.ErrLeaseNotFound, as applying it would answer. Whether
// the lease exists is decided when applied.
func ProposePut(key string, value []byte, lease int64) (Command, error) {
	if lease < 0 {
		return Command{}, fmt.Errorf("%w: %d", messages.ErrLeaseNotFound, lease)
	}
	c := Command{Op: OpPut, Key: key, Value: value, Lease: lease}
	return c, checkProposed(c)
}

// ProposeDelete is the command of a single-key delete.
func ProposeDelete(key string) (Command, error) {
	c := Command{Op: OpDelete, Key: key}
	return c, checkProposed(c)
}

// ProposeTxn is the command of a transaction, with the keys it may write
// (all: it deletes a range, which may hold any key), so that the proposer
// never batches two writes of one key into one entry. It is decided when
// applied.
func ProposeTxn(t messages.Txn) (c Command, keys []string, all bool, err error) {
	if err := checkTxn(t); err != nil {
		return Command{}, nil, false, err
	}
	if err := checkTxnKeys(t, messages.MaxKeyBytes, false); err != nil {
		return Command{}, nil, false, err
	}
	keys, all = txnKeys(t)
	return Command{Op: OpTxn, Value: encodeTxn(t)}, keys, all, nil
}

// ProposeAttrs is member id's publication of its client URLs.
func ProposeAttrs(id uint64, urls []string) Command { return attrsCommand(id, urls) }

// ProposeLeaseGrant is the command of a grant of lease id (> 0: the kv
// actor chooses one for a request of id 0) for ttl seconds. The minimum
// TTL is the kv actor's to raise (it knows the election timeout); here a
// TTL must only be positive and at most messages.MaxLeaseTTL.
func ProposeLeaseGrant(id, ttl int64) (Command, error) {
	switch {
	case id <= 0:
		return Command{}, fmt.Errorf("%w: lease id %d: it must be > 0", messages.ErrBadRequest, id)
	case ttl > messages.MaxLeaseTTL:
		return Command{}, fmt.Errorf("%w: %d s, at most %d", messages.ErrLeaseTTLTooLarge, ttl, int64(messages.MaxLeaseTTL))
	case ttl <= 0:
		return Command{}, fmt.Errorf("%w: lease TTL %d s: it must be > 0", messages.ErrBadRequest, ttl)
	}
	return leaseCommand(OpLeaseGrant, id, ttl, 0), nil
}

// ProposeLeaseRevoke is a client's revocation of lease id, which deletes
// its keys. An id ≤ 0 is never granted: messages.ErrLeaseNotFound, as
// applying it would answer.
func ProposeLeaseRevoke(id int64) (Command, error) { return ProposeLeaseExpiry(id, 0) }

// ProposeLeaseExpiry is the leader's revocation of lease id, found past
// its deadline while it led in term: applied only from an entry of that
// term (lease.go).
func ProposeLeaseExpiry(id int64, term uint64) (Command, error) {
	if id <= 0 {
		return Command{}, fmt.Errorf("%w: %d", messages.ErrLeaseNotFound, id)
	}
	return leaseCommand(OpLeaseRevoke, id, 0, term), nil
}

// ProposeLeaseCheckpoint is the command that records remaining, the TTL
// the deadline of the leader of term leaves lease id, in seconds (0 clears
// it: the lease was renewed whole); applied only from an entry of that
// term.
func ProposeLeaseCheckpoint(id, remaining int64, term uint64) (Command, error) {
	switch {
	case id <= 0:
		return Command{}, fmt.Errorf("%w: lease id %d: it must be > 0", messages.ErrBadRequest, id)
	case remaining > messages.MaxLeaseTTL:
		return Command{}, fmt.Errorf("%w: %d s, at most %d", messages.ErrLeaseTTLTooLarge, remaining, int64(messages.MaxLeaseTTL))
	case remaining < 0:
		return Command{}, fmt.Errorf("%w: remaining TTL %d s: it must be ≥ 0", messages.ErrBadRequest, remaining)
	}
	return leaseCommand(OpLeaseCheckpoint, id, remaining, term), nil
}
