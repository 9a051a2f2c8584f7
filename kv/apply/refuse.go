package apply

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// Applying a committed entry is total: what an entry holds can make the
// state machine refuse it, never stop. An entry reaches the log past the
// API's checks when a bug lets it through, when an older binary proposed
// it, or when raftexample's members did; every member applies the same log,
// so a content error that stopped one would stop them all, on every restart
// after it. A refused entry (or command of a batch entry) changes nothing
// but the applied index, and its client, if it waits here, is answered
// messages.ErrEntryRefused with the reason. Whether an entry is refused
// depends on its bytes alone, so every member refuses the same ones and the
// digests stay equal. Only the member's own db failing stops it.
//
// The limits below are bbolt's, not the API's: an entry an older binary
// applied without trouble must apply here the same way, or members of two
// releases would diverge. The API refuses far less (messages.MaxKeyBytes,
// --max-request-bytes) before anything is proposed.
const (
	// maxStoredKey is the longest key bbolt stores: the store writes a
	// user key as the bbolt key, unchanged.
	maxStoredKey = bolt.MaxKeySize
	// maxStoredValue is the longest value whose record (three revision
	// varints and the value) bbolt stores.
	maxStoredValue = bolt.MaxValueSize - 3*binary.MaxVarintLen64
	// maxStoredLeasedKey is the longest key bbolt stores attached to a
	// lease: the lease index's key is the lease id and the key. No older
	// binary applied a put with a lease, so the lower limit changes no
	// entry's fate.
	maxStoredLeasedKey = maxStoredKey - store.LeaseIndexOverhead
	// maxStoredLeasedValue is the longest value whose record with a lease
	// (a marker byte, three revision varints, the lease and the value)
	// bbolt stores.
	maxStoredLeasedValue = maxStoredValue - 1 - binary.MaxVarintLen64
)

// putLimits are the longest key and value a put may store, with its lease
// or without.
func putLimits(lease int64) (key, value int) {
	if lease != 0 {
		return maxStoredLeasedKey, maxStoredLeasedValue
	}
	return maxStoredKey, maxStoredValue
}

// checkKey refuses a key the db cannot hold, or one over limit: the API's
// limit before a write is proposed, the db's when it is applied.
func checkKey(key string, limit int) error {
	if len(key) > limit {
		return fmt.Errorf("%w: %d bytes, at most %d", messages.ErrKeyTooLarge, len(key), limit)
	}
	if key == "" {
		return messages.ErrEmptyKey
	}
	return nil
}

// checkStored refuses, when it is applied, a put or delete whose key or
// value the db cannot hold. A transaction is checked by decodeTxn.
func checkStored(c Command) error {
	switch c.Op {
	case OpPut, OpDelete:
		keyLimit, valueLimit := putLimits(c.Lease)
		if err := checkKey(c.Key, keyLimit); err != nil {
			return err
		}
		if len(c.Value) > valueLimit {
			return fmt.Errorf("%w: %d bytes", messages.ErrValueTooLarge, len(c.Value))
		}
	}
	return nil
}

// checkProposed refuses, before it is proposed, a put or delete that the
// API's limits forbid.
func checkProposed(c Command) error {
	if err := checkKey(c.Key, messages.MaxKeyBytes); err != nil {
		return err
	}
	if _, valueLimit := putLimits(c.Lease); len(c.Value) > valueLimit {
		return fmt.Errorf("%w: %d bytes", messages.ErrValueTooLarge, len(c.Value))
	}
	return nil
}

// checkTxnKeys refuses a transaction that names a key over limit. Before
// it is proposed every key counts (limit messages.MaxKeyBytes, writes:
// false); when it is applied only the keys it writes do (maxStoredKey,
// writes: true), as they are all the db would refuse. Nested
// transactions' keys count alike.
func checkTxnKeys(t messages.Txn, limit int, writes bool) error {
	check := func(what string, i int, key string) error {
		if len(key) > limit {
			return fmt.Errorf("%w: %s %d: key of %d bytes, at most %d", messages.ErrKeyTooLarge, what, i, len(key), limit)
		}
		return nil
	}
	if !writes {
		for i, c := range t.Compares {
			if err := check("compare", i, c.Key); err != nil {
				return err
			}
		}
	}
	for _, ops := range [][]messages.TxnOp{t.Success, t.Failure} {
		for i, op := range ops {
			keys := []string{op.Key, op.End}
			switch {
			case op.Type == messages.OpTxn:
				if op.Txn == nil {
					continue // checkTxn refuses it
				}
				if err := checkTxnKeys(*op.Txn, limit, writes); err != nil {
					return fmt.Errorf("operation %d: nested: %w", i, err)
				}
				continue
			case op.Type == messages.OpPut:
				lease := op.Lease
				if op.IgnoreLease {
					// It keeps the key's lease, if it has one: the
					// limits of a key with a lease, whatever the state.
					lease = 1
				}
				keyLimit, valueLimit := putLimits(lease)
				if len(op.Value) > valueLimit {
					return fmt.Errorf("%w: operation %d: %d bytes", messages.ErrValueTooLarge, i, len(op.Value))
				}
				if writes && len(op.Key) > keyLimit {
					return fmt.Errorf("%w: operation %d: key of %d bytes attached to a lease, at most %d", messages.ErrKeyTooLarge, i, len(op.Key), keyLimit)
				}
			case writes:
				// A delete's key and end are only bounds of a cursor.
				continue
			case op.Type == messages.OpRange:
				keys = []string{op.Range.Start, op.Range.End}
			}
			for _, k := range keys {
				if err := check("operation", i, k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// peekReqID is the request id of a native command that does not decode
// whole, or 0 if even that is unreadable: its client can still be told.
func peekReqID(data []byte) uint64 {
	if len(data) < 2 {
		return 0
	}
	id, n := binary.Uvarint(data[1:])
	if n <= 0 {
		return 0
	}
	return id
}

// maxReasonBytes bounds a refusal's reason in a log line: one line an
// operator reads, whatever the entry held.
const maxReasonBytes = 256
