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
	// MaxTxnCompares bounds the compares of a transaction, those of its
	// nested transactions included.
	MaxTxnCompares = 128
	MaxTxnOps      = 128 // per branch, of the transaction and of each nested one
	// MaxTxnOpsTotal bounds the operations of every branch at every
	// level together (a nested transaction counts as one, and its own
	// operations besides): what a flat transaction's two branches hold,
	// so that nesting makes a transaction no costlier to decode, check
	// and apply than one without.
	MaxTxnOpsTotal = 2 * MaxTxnOps
	// MaxTxnDepth bounds how deep transactions nest, the outer one at
	// depth 1: decoding, checking and applying recurse once per level,
	// and etcd's clients nest one or two deep.
	MaxTxnDepth = 8
)

// txnCount counts a transaction's compares and operations across its
// levels, against MaxTxnCompares and MaxTxnOpsTotal.
type txnCount struct{ compares, ops int }

// checkTxn refuses, before it is proposed, a transaction that cannot be
// applied as asked. A key written twice in one branch (nested
// transactions' branches included) would have two writes at one
// revision, which no mod_revision could tell apart.
func checkTxn(t messages.Txn) error {
	var n txnCount
	_, err := checkLevel(t, 1, &n)
	return err
}

// span is a range a delete removes.
type span struct{ start, end string }

// writeSet is what a branch (or a nested transaction, either branch) may
// write: single keys, by puts and single-key deletes, and delete ranges.
type writeSet struct {
	keys  []string
	spans []span
}

func (w *writeSet) add(o writeSet) {
	w.keys = append(w.keys, o.keys...)
	w.spans = append(w.spans, o.spans...)
}

// checkLevel checks t, at depth, and returns what it may write (either
// branch: they are alternatives).
func checkLevel(t messages.Txn, depth int, n *txnCount) (writeSet, error) {
	if depth > MaxTxnDepth {
		return writeSet{}, fmt.Errorf("%w: transactions nested deeper than %d", messages.ErrInvalidTxn, MaxTxnDepth)
	}
	if n.compares += len(t.Compares); n.compares > MaxTxnCompares {
		return writeSet{}, fmt.Errorf("%w: %d compares or more, at most %d", messages.ErrTooManyOps, n.compares, MaxTxnCompares)
	}
	for i, c := range t.Compares {
		if c.Key == "" {
			return writeSet{}, fmt.Errorf("%w: compare %d has no key", messages.ErrInvalidTxn, i)
		}
		if c.Target < messages.CompareValue || c.Target > messages.CompareLease {
			return writeSet{}, fmt.Errorf("%w: compare %d: unknown target %d", messages.ErrInvalidTxn, i, c.Target)
		}
		if c.Op < messages.CompareEqual || c.Op > messages.CompareGreater {
			return writeSet{}, fmt.Errorf("%w: compare %d: unknown op %d", messages.ErrInvalidTxn, i, c.Op)
		}
	}
	var all writeSet
	for _, branch := range []struct {
		name string
		ops  []messages.TxnOp
	}{{"success", t.Success}, {"failure", t.Failure}} {
		w, err := checkBranch(branch.ops, depth, n)
		if err != nil {
			return writeSet{}, fmt.Errorf("%s: %w", branch.name, err)
		}
		all.add(w)
	}
	return all, nil
}

// checkBranch checks one branch's operations and that no two of them write
// one key, the writes of a nested transaction's branches counting as its
// own; it returns what the branch may write.
func checkBranch(ops []messages.TxnOp, depth int, n *txnCount) (writeSet, error) {
	if len(ops) > MaxTxnOps {
		return writeSet{}, fmt.Errorf("%w: %d operations, at most %d", messages.ErrTooManyOps, len(ops), MaxTxnOps)
	}
	if n.ops += len(ops); n.ops > MaxTxnOpsTotal {
		return writeSet{}, fmt.Errorf("%w: %d operations or more in all its branches, at most %d", messages.ErrTooManyOps, n.ops, MaxTxnOpsTotal)
	}
	// What each operation may write, by its position.
	items := make([]writeSet, len(ops))
	for i, op := range ops {
		w, err := checkOp(op, depth, n)
		if err != nil {
			return writeSet{}, fmt.Errorf("operation %d: %w", i, err)
		}
		items[i] = w
	}
	// A key one operation writes may be written by no other, nor lie in
	// another's delete range. Two delete ranges may overlap: a key in both
	// is gone after the first. The messages name no key: they may reach a
	// log line.
	owner := make(map[string]int)
	for i, w := range items {
		for _, k := range w.keys {
			if j, ok := owner[k]; ok && j != i {
				return writeSet{}, fmt.Errorf("%w: operation %d writes a key an earlier operation writes", messages.ErrDuplicateKey, i)
			}
			owner[k] = i
		}
	}
	for k, i := range owner {
		for j, w := range items {
			if j == i {
				continue // a nested transaction's branches are alternatives
			}
			for _, d := range w.spans {
				if store.InRange(k, d.start, d.end) {
					return writeSet{}, fmt.Errorf("%w: a key of %d bytes (a delete range covers it)", messages.ErrDuplicateKey, len(k))
				}
			}
		}
	}
	var all writeSet
	for _, w := range items {
		all.add(w)
	}
	return all, nil
}

// checkOp checks one operation and returns what it may write.
func checkOp(op messages.TxnOp, depth int, n *txnCount) (writeSet, error) {
	switch {
	case op.Lease < 0:
		// Never granted; and the encoding has no room for one.
		return writeSet{}, fmt.Errorf("%w: lease %d", messages.ErrLeaseNotFound, op.Lease)
	case op.Lease != 0 && op.Type != messages.OpPut:
		return writeSet{}, fmt.Errorf("%w: only a put has a lease", messages.ErrInvalidTxn)
	case op.PrevKV && op.Type != messages.OpPut && op.Type != messages.OpDelete:
		return writeSet{}, fmt.Errorf("%w: only a put or a delete returns previous keys", messages.ErrInvalidTxn)
	case (op.IgnoreValue || op.IgnoreLease) && op.Type != messages.OpPut:
		return writeSet{}, fmt.Errorf("%w: only a put keeps a key's value or lease", messages.ErrInvalidTxn)
	case op.Txn != nil && op.Type != messages.OpTxn:
		return writeSet{}, fmt.Errorf("%w: only a nested transaction operation holds a transaction", messages.ErrInvalidTxn)
	}
	switch op.Type {
	case messages.OpGet:
		if op.Key == "" {
			return writeSet{}, fmt.Errorf("%w: get with no key", messages.ErrInvalidTxn)
		}
	case messages.OpRange:
		if err := store.CheckRange(op.Range.Start, op.Range.End); err != nil {
			return writeSet{}, err
		}
		if op.Range.Revision != 0 {
			return writeSet{}, fmt.Errorf("%w: a transaction reads at its own revision", messages.ErrInvalidTxn)
		}
	case messages.OpPut:
		switch {
		case op.Key == "":
			return writeSet{}, fmt.Errorf("%w: put with no key", messages.ErrInvalidTxn)
		case op.IgnoreValue && len(op.Value) != 0:
			// etcd's rpctypes.ErrValueProvided.
			return writeSet{}, fmt.Errorf("%w: a put that keeps the key's value carries a value", messages.ErrInvalidTxn)
		case op.IgnoreLease && op.Lease != 0:
			// etcd's rpctypes.ErrLeaseProvided.
			return writeSet{}, fmt.Errorf("%w: a put that keeps the key's lease names a lease", messages.ErrInvalidTxn)
		}
		return writeSet{keys: []string{op.Key}}, nil
	case messages.OpDelete:
		if op.End == "" {
			if op.Key == "" {
				return writeSet{}, fmt.Errorf("%w: delete with no key", messages.ErrInvalidTxn)
			}
			return writeSet{keys: []string{op.Key}}, nil
		}
		if err := store.CheckRange(op.Key, op.End); err != nil {
			return writeSet{}, err
		}
		return writeSet{spans: []span{{op.Key, op.End}}}, nil
	case messages.OpTxn:
		if op.Txn == nil {
			return writeSet{}, fmt.Errorf("%w: a nested transaction operation without a transaction", messages.ErrInvalidTxn)
		}
		if op.Key != "" || op.End != "" || len(op.Value) != 0 || op.Range != (messages.Range{}) {
			return writeSet{}, fmt.Errorf("%w: a nested transaction operation names a key, a value or a range", messages.ErrInvalidTxn)
		}
		w, err := checkLevel(*op.Txn, depth+1, n)
		if err != nil {
			return writeSet{}, fmt.Errorf("nested: %w", err)
		}
		return w, nil
	default:
		return writeSet{}, fmt.Errorf("%w: unknown type %d", messages.ErrInvalidTxn, op.Type)
	}
	return writeSet{}, nil
}

// txnKeys lists the keys t may write, nested transactions' included, for
// the batcher, which never puts two writes of one key into one entry; all
// says it deletes a range, which may hold any key.
func txnKeys(t messages.Txn) (keys []string, all bool) {
	for _, ops := range [][]messages.TxnOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch {
			case op.Type == messages.OpPut, op.Type == messages.OpDelete && op.End == "":
				keys = append(keys, op.Key)
			case op.Type == messages.OpDelete:
				all = true
			case op.Type == messages.OpTxn && op.Txn != nil:
				k, a := txnKeys(*op.Txn)
				keys, all = append(keys, k...), all || a
			}
		}
	}
	return keys, all
}

// Flags of an encoded operation. Only what a transaction uses is set, so a
// transaction without leases, previous keys, kept values or leases, or
// nested transactions is spelt as before each of them.
const (
	txnFlagKeysOnly    = 1  // a range's
	txnFlagCountOnly   = 2  // a range's
	txnFlagLease       = 4  // a put with a lease, which follows the flags
	txnFlagPrevKV      = 8  // a put's or a delete's
	txnFlagIgnoreValue = 16 // a put's
	txnFlagIgnoreLease = 32 // a put's
)

// encodeTxn writes t as an OpTxn command's value:
//
//	compares (uvarint count) | each: target | op | key | value | number
//	success ops | failure ops (uvarint count each) | each: type | key | end |
//	  value | limit (uvarint) | flags [| lease (uvarint), with txnFlagLease]
//
// A range's bounds travel as the operation's key and end. A nested
// transaction (OpTxn) has an empty key and end, its encoding (this one) as
// value, limit 0 and no flags. The flags bits are txnFlag*; 64 and 128 are
// ignored when decoded, as they always were.
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
			key, end, value := op.Key, op.End, op.Value
			var flags byte
			switch op.Type {
			case messages.OpRange:
				key, end = op.Range.Start, op.Range.End
				if op.Range.KeysOnly {
					flags |= txnFlagKeysOnly
				}
				if op.Range.CountOnly {
					flags |= txnFlagCountOnly
				}
			case messages.OpPut:
				if op.Lease != 0 {
					flags |= txnFlagLease
				}
				if op.IgnoreValue {
					flags |= txnFlagIgnoreValue
				}
				if op.IgnoreLease {
					flags |= txnFlagIgnoreLease
				}
			case messages.OpTxn:
				if op.Txn != nil {
					value = encodeTxn(*op.Txn)
				}
			}
			if op.PrevKV && (op.Type == messages.OpPut || op.Type == messages.OpDelete) {
				flags |= txnFlagPrevKV
			}
			b = append(b, byte(op.Type))
			b = wire.AppendBytes(b, []byte(key))
			b = wire.AppendBytes(b, []byte(end))
			b = wire.AppendBytes(b, value)
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

// decodeTxn parses an OpTxn command's value and checks it as checkTxn does,
// and its writes against the db's limits: an entry that fails is refused
// when applied (refuse.go), alike on every member. Values alias b.
func decodeTxn(b []byte) (messages.Txn, error) {
	var n txnCount
	t, err := decodeLevel(b, 1, &n)
	if err != nil {
		return t, err
	}
	if err := checkTxn(t); err != nil {
		return t, fmt.Errorf("%w: %w", ErrBadCommand, err)
	}
	if err := checkTxnKeys(t, maxStoredKey, true); err != nil {
		return t, err
	}
	return t, nil
}

// decodeLevel parses a transaction at depth, counting its compares and
// operations in n so that an entry past the bounds is refused before it
// is decoded whole.
func decodeLevel(b []byte, depth int, n *txnCount) (messages.Txn, error) {
	var t messages.Txn
	if depth > MaxTxnDepth {
		return t, fmt.Errorf("%w: transactions nested deeper than %d", ErrBadCommand, MaxTxnDepth)
	}
	r := wire.Reader{B: b}
	k := r.Uvarint()
	if r.Err == nil && k > uint64(MaxTxnCompares-n.compares) {
		return t, fmt.Errorf("%w: %d compares", ErrBadCommand, k)
	}
	n.compares += int(k)
	for i := uint64(0); i < k && r.Err == nil; i++ {
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
		k := r.Uvarint()
		if r.Err == nil && (k > MaxTxnOps || k > uint64(MaxTxnOpsTotal-n.ops)) {
			return t, fmt.Errorf("%w: %d operations", ErrBadCommand, k)
		}
		n.ops += int(k)
		for i := uint64(0); i < k && r.Err == nil; i++ {
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
			if err := checkFlags(op.Type, flags, limit); err != nil {
				return t, err
			}
			if flags&txnFlagLease != 0 {
				lease, k, ok := minimalUvarint(r.B)
				// One encoding: lease 0 is no flag.
				if !ok || lease == 0 || lease > math.MaxInt64 {
					return t, fmt.Errorf("%w: operation's lease", ErrBadCommand)
				}
				op.Lease, r.B = int64(lease), r.B[k:]
			}
			op.PrevKV = flags&txnFlagPrevKV != 0
			op.IgnoreValue = flags&txnFlagIgnoreValue != 0
			op.IgnoreLease = flags&txnFlagIgnoreLease != 0
			switch op.Type {
			case messages.OpRange:
				op.Range = messages.Range{Start: op.Key, End: op.End, Limit: int(limit), KeysOnly: flags&txnFlagKeysOnly != 0, CountOnly: flags&txnFlagCountOnly != 0}
				op.Key, op.End = "", ""
			case messages.OpTxn:
				if op.Key != "" || op.End != "" {
					return t, fmt.Errorf("%w: a nested transaction with a key", ErrBadCommand)
				}
				nested, err := decodeLevel(op.Value, depth+1, n)
				if err != nil {
					return t, err
				}
				op.Txn, op.Value = &nested, nil
			}
			*ops = append(*ops, op)
		}
	}
	if r.Err != nil || len(r.B) != 0 {
		return t, fmt.Errorf("%w: transaction", ErrBadCommand)
	}
	return t, nil
}

// checkFlags refuses flags an operation of type typ never has, so that
// each transaction has one encoding: the bits that came with previous keys,
// kept values and leases, and nested transactions are set only where they
// mean something. The range bits on another operation, and the bits 64 and
// 128, were ignored before these, and still are: an entry a build before
// them applied applies alike.
func checkFlags(typ messages.OpType, flags byte, limit uint64) error {
	var allowed byte
	switch typ {
	case messages.OpPut:
		allowed = txnFlagLease | txnFlagPrevKV | txnFlagIgnoreValue | txnFlagIgnoreLease
	case messages.OpDelete:
		allowed = txnFlagPrevKV
	case messages.OpTxn:
		// New with nested transactions: nothing may follow the value.
		if flags != 0 || limit != 0 {
			return fmt.Errorf("%w: a nested transaction with flags or a limit", ErrBadCommand)
		}
		return nil
	}
	const checked = txnFlagLease | txnFlagPrevKV | txnFlagIgnoreValue | txnFlagIgnoreLease
	if flags&checked&^allowed != 0 {
		return fmt.Errorf("%w: operation of type %d with flags %#x", ErrBadCommand, typ, flags)
	}
	return nil
}
