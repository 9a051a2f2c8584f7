package apply

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/raftkv/node/kv/internal/wire"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// OpTxn is a transaction: its command's value is the encoded messages.Txn,
// its key empty. It is one entry (or one command of a batch entry), so all
// its writes share the entry's revision, and it is decided when applied.
const OpTxn Op = 5

// Bounds of one transaction, each with the reason for it: it is applied in
// one go on the kv actor, between other entries, and its answer is one
// HTTP body. etcd's default is 128 operations (--max-txn-ops).
const (
	MaxTxnCompares = 128
	MaxTxnOps      = 128 // per branch
)

// checkTxn refuses, before it is proposed, a transaction that cannot be
// applied as asked. A key written twice in one branch would have two writes
// at one revision, which no mod_revision could tell apart.
func checkTxn(t messages.Txn) error {
	if len(t.Compares) > MaxTxnCompares {
		return fmt.Errorf("%w: %d compares, at most %d", messages.ErrInvalidTxn, len(t.Compares), MaxTxnCompares)
	}
	for i, c := range t.Compares {
		if c.Key == "" {
			return fmt.Errorf("%w: compare %d has no key", messages.ErrInvalidTxn, i)
		}
		if c.Target < messages.CompareValue || c.Target > messages.CompareModRevision {
			return fmt.Errorf("%w: compare %d: unknown target %d", messages.ErrInvalidTxn, i, c.Target)
		}
		if c.Op < messages.CompareEqual || c.Op > messages.CompareGreater {
			return fmt.Errorf("%w: compare %d: unknown op %d", messages.ErrInvalidTxn, i, c.Op)
		}
	}
	for _, branch := range []struct {
		name string
		ops  []messages.TxnOp
	}{{"success", t.Success}, {"failure", t.Failure}} {
		if err := checkBranch(branch.ops); err != nil {
			return fmt.Errorf("%s: %w", branch.name, err)
		}
	}
	return nil
}

func checkBranch(ops []messages.TxnOp) error {
	if len(ops) > MaxTxnOps {
		return fmt.Errorf("%w: %d operations, at most %d", messages.ErrInvalidTxn, len(ops), MaxTxnOps)
	}
	written := make(map[string]bool)
	type span struct{ start, end string }
	var deleted []span
	for i, op := range ops {
		switch {
		case op.Lease < 0:
			// Never granted; and the encoding has no room for one.
			return fmt.Errorf("%w: operation %d: lease %d", messages.ErrLeaseNotFound, i, op.Lease)
		case op.Lease != 0 && op.Type != messages.OpPut:
			return fmt.Errorf("%w: operation %d: only a put has a lease", messages.ErrInvalidTxn, i)
		}
		switch op.Type {
		case messages.OpGet:
			if op.Key == "" {
				return fmt.Errorf("%w: operation %d: get with no key", messages.ErrInvalidTxn, i)
			}
		case messages.OpRange:
			if err := store.CheckRange(op.Range.Start, op.Range.End); err != nil {
				return fmt.Errorf("operation %d: %w", i, err)
			}
			if op.Range.Revision != 0 {
				return fmt.Errorf("%w: operation %d: a transaction reads at its own revision", messages.ErrInvalidTxn, i)
			}
		case messages.OpPut:
			if op.Key == "" {
				return fmt.Errorf("%w: operation %d: put with no key", messages.ErrInvalidTxn, i)
			}
			if written[op.Key] {
				return fmt.Errorf("%w: operation %d writes a key an earlier operation writes", messages.ErrInvalidTxn, i)
			}
			written[op.Key] = true
		case messages.OpDelete:
			if op.End == "" {
				if op.Key == "" {
					return fmt.Errorf("%w: operation %d: delete with no key", messages.ErrInvalidTxn, i)
				}
				if written[op.Key] {
					return fmt.Errorf("%w: operation %d writes a key an earlier operation writes", messages.ErrInvalidTxn, i)
				}
				written[op.Key] = true
			} else if err := store.CheckRange(op.Key, op.End); err != nil {
				return fmt.Errorf("operation %d: %w", i, err)
			}
			deleted = append(deleted, span{op.Key, op.End})
		default:
			return fmt.Errorf("%w: operation %d: unknown type %d", messages.ErrInvalidTxn, i, op.Type)
		}
	}
	for k := range written {
		n := 0
		for _, d := range deleted {
			if store.InRange(k, d.start, d.end) {
				n++
			}
		}
		// A single-key delete covers its own key once; anything more is a
		// second write of the key.
		if n > 1 || (n == 1 && !singleDelete(ops, k)) {
			// The message names no key: it may reach a log line.
			return fmt.Errorf("%w: a key of %d bytes is written twice (a delete range covers it)", messages.ErrInvalidTxn, len(k))
		}
	}
	return nil
}

func singleDelete(ops []messages.TxnOp, key string) bool {
	for _, op := range ops {
		if op.Type == messages.OpDelete && op.End == "" && op.Key == key {
			return true
		}
	}
	return false
}

// txnKeys lists the keys t may write, for the batcher, which never puts two
// writes of one key into one entry; all says it deletes a range, which may
// hold any key.
func txnKeys(t messages.Txn) (keys []string, all bool) {
	for _, ops := range [][]messages.TxnOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch {
			case op.Type == messages.OpPut, op.Type == messages.OpDelete && op.End == "":
				keys = append(keys, op.Key)
			case op.Type == messages.OpDelete:
				all = true
			}
		}
	}
	return keys, all
}

// encodeTxn writes t as an OpTxn command's value:
//
//	compares (uvarint count) | each: target | op | key | value | number
//	success ops | failure ops (uvarint count each) | each: type | key | end |
//	  value | limit (uvarint) | flags (1 keys only, 2 count only, 4 lease)
//	  [| lease (uvarint), with flag 4]
//
// A range's bounds travel as the operation's key and end. Only a put with
// a lease sets flag 4, so a transaction without leases is spelt as before
// leases.
func encodeTxn(t messages.Txn) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(t.Compares)))
	for _, c := range t.Compares {
		b = append(b, byte(c.Target), byte(c.Op))
		b = wire.AppendBytes(b, []byte(c.Key))
		b = wire.AppendBytes(b, c.Value)
		b = binary.AppendUvarint(b, c.Number)
	}
	for _, ops := range [][]messages.TxnOp{t.Success, t.Failure} {
		b = binary.AppendUvarint(b, uint64(len(ops)))
		for _, op := range ops {
			key, end := op.Key, op.End
			var flags byte
			if op.Type == messages.OpRange {
				key, end = op.Range.Start, op.Range.End
				if op.Range.KeysOnly {
					flags |= 1
				}
				if op.Range.CountOnly {
					flags |= 2
				}
			}
			if op.Type == messages.OpPut && op.Lease != 0 {
				flags |= txnFlagLease
			}
			b = append(b, byte(op.Type))
			b = wire.AppendBytes(b, []byte(key))
			b = wire.AppendBytes(b, []byte(end))
			b = wire.AppendBytes(b, op.Value)
			// A limit past store.MaxRangeLimit reads what store.MaxRangeLimit does
			// (store.LimitOf), and decodeTxn refuses one.
			b = binary.AppendUvarint(b, uint64(min(max(op.Range.Limit, 0), store.MaxRangeLimit)))
			b = append(b, flags)
			if flags&txnFlagLease != 0 {
				b = binary.AppendUvarint(b, uint64(op.Lease))
			}
		}
	}
	return b
}

// txnFlagLease marks a put with a lease, which follows the flags.
const txnFlagLease = 4

// decodeTxn parses an OpTxn command's value and checks it as checkTxn does,
// and its writes against the db's limits: an entry that fails is refused
// when applied (refuse.go), alike on every member. Values alias b.
func decodeTxn(b []byte) (messages.Txn, error) {
	r := wire.Reader{B: b}
	var t messages.Txn
	n := r.Uvarint()
	if r.Err == nil && n > MaxTxnCompares {
		return t, fmt.Errorf("%w: %d compares", ErrBadCommand, n)
	}
	for i := uint64(0); i < n && r.Err == nil; i++ {
		if len(r.B) < 2 {
			return t, fmt.Errorf("%w: truncated compare", ErrBadCommand)
		}
		c := messages.Compare{Target: messages.CompareTarget(r.B[0]), Op: messages.CompareOp(r.B[1])}
		r.B = r.B[2:]
		c.Key = string(r.Bytes())
		c.Value = r.Bytes()
		c.Number = r.Uvarint()
		t.Compares = append(t.Compares, c)
	}
	for _, ops := range []*[]messages.TxnOp{&t.Success, &t.Failure} {
		n := r.Uvarint()
		if r.Err == nil && n > MaxTxnOps {
			return t, fmt.Errorf("%w: %d operations", ErrBadCommand, n)
		}
		for i := uint64(0); i < n && r.Err == nil; i++ {
			if len(r.B) < 1 {
				return t, fmt.Errorf("%w: truncated operation", ErrBadCommand)
			}
			op := messages.TxnOp{Type: messages.OpType(r.B[0])}
			r.B = r.B[1:]
			op.Key, op.End = string(r.Bytes()), string(r.Bytes())
			op.Value = r.Bytes()
			limit := r.Uvarint()
			if r.Err != nil || len(r.B) < 1 || limit > store.MaxRangeLimit {
				return t, fmt.Errorf("%w: truncated operation", ErrBadCommand)
			}
			flags := r.B[0]
			r.B = r.B[1:]
			if flags&txnFlagLease != 0 {
				lease, k, ok := minimalUvarint(r.B)
				// One encoding: lease 0 is no flag, and only a put has one.
				if !ok || lease == 0 || lease > math.MaxInt64 || op.Type != messages.OpPut {
					return t, fmt.Errorf("%w: operation's lease", ErrBadCommand)
				}
				op.Lease, r.B = int64(lease), r.B[k:]
			}
			if op.Type == messages.OpRange {
				op.Range = messages.Range{Start: op.Key, End: op.End, Limit: int(limit), KeysOnly: flags&1 != 0, CountOnly: flags&2 != 0}
				op.Key, op.End = "", ""
			}
			*ops = append(*ops, op)
		}
	}
	if r.Err != nil || len(r.B) != 0 {
		return t, fmt.Errorf("%w: transaction", ErrBadCommand)
	}
	if err := checkTxn(t); err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if err := checkTxnKeys(t, maxStoredKey, true); err != nil {
		return t, err
	}
	return t, nil
}
