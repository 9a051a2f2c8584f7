package apply

import (
	"github.com/raftkv/node/messages"
)

// The constructors below are the last door before raft: each checks a
// client's write against the API's limits (refuse.go) and returns the
// command to encode and propose. What they refuse is never proposed.

// ProposePut is the command of a put.
func ProposePut(key string, value []byte) (Command, error) {
	c := Command{Op: OpPut, Key: key, Value: value}
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
