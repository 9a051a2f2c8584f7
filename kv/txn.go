package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/raftkv/node/messages"
)

// opTxn is a transaction: its command's value is the encoded messages.Txn,
// its key empty. It is one entry (or one command of a batch entry), so all
// its writes share the entry's revision, and it is decided when applied.
const opTxn op = 5

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
		switch op.Type {
		case messages.OpGet:
			if op.Key == "" {
				return fmt.Errorf("%w: operation %d: get with no key", messages.ErrInvalidTxn, i)
			}
		case messages.OpRange:
			if err := checkRange(op.Range.Start, op.Range.End); err != nil {
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
			} else if err := checkRange(op.Key, op.End); err != nil {
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
			if inRange(k, d.start, d.end) {
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

// encodeTxn writes t as an opTxn command's value:
//
//	compares (uvarint count) | each: target | op | key | value | number
//	success ops | failure ops (uvarint count each) | each: type | key | end |
//	  value | limit (uvarint) | flags (1 keys only, 2 count only)
//
// A range's bounds travel as the operation's key and end.
func encodeTxn(t messages.Txn) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(t.Compares)))
	for _, c := range t.Compares {
		b = append(b, byte(c.Target), byte(c.Op))
		b = appendBytes(b, []byte(c.Key))
		b = appendBytes(b, c.Value)
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
			b = append(b, byte(op.Type))
			b = appendBytes(b, []byte(key))
			b = appendBytes(b, []byte(end))
			b = appendBytes(b, op.Value)
			// A limit past MaxRangeLimit reads what MaxRangeLimit does
			// (limitOf), and decodeTxn refuses one.
			b = binary.AppendUvarint(b, uint64(min(max(op.Range.Limit, 0), MaxRangeLimit)))
			b = append(b, flags)
		}
	}
	return b
}

// decodeTxn parses an opTxn command's value and checks it as checkTxn does,
// and its writes against the db's limits: an entry that fails is refused
// when applied (refuse.go), alike on every member. Values alias b.
func decodeTxn(b []byte) (messages.Txn, error) {
	r := reader{b: b}
	var t messages.Txn
	n := r.uvarint()
	if r.err == nil && n > MaxTxnCompares {
		return t, fmt.Errorf("%w: %d compares", ErrBadCommand, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		if len(r.b) < 2 {
			return t, fmt.Errorf("%w: truncated compare", ErrBadCommand)
		}
		c := messages.Compare{Target: messages.CompareTarget(r.b[0]), Op: messages.CompareOp(r.b[1])}
		r.b = r.b[2:]
		c.Key = string(r.bytes())
		c.Value = r.bytes()
		c.Number = r.uvarint()
		t.Compares = append(t.Compares, c)
	}
	for _, ops := range []*[]messages.TxnOp{&t.Success, &t.Failure} {
		n := r.uvarint()
		if r.err == nil && n > MaxTxnOps {
			return t, fmt.Errorf("%w: %d operations", ErrBadCommand, n)
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			if len(r.b) < 1 {
				return t, fmt.Errorf("%w: truncated operation", ErrBadCommand)
			}
			op := messages.TxnOp{Type: messages.OpType(r.b[0])}
			r.b = r.b[1:]
			op.Key, op.End = string(r.bytes()), string(r.bytes())
			op.Value = r.bytes()
			limit := r.uvarint()
			if r.err != nil || len(r.b) < 1 || limit > MaxRangeLimit {
				return t, fmt.Errorf("%w: truncated operation", ErrBadCommand)
			}
			flags := r.b[0]
			r.b = r.b[1:]
			if op.Type == messages.OpRange {
				op.Range = messages.Range{Start: op.Key, End: op.End, Limit: int(limit), KeysOnly: flags&1 != 0, CountOnly: flags&2 != 0}
				op.Key, op.End = "", ""
			}
			*ops = append(*ops, op)
		}
	}
	if r.err != nil || len(r.b) != 0 {
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

// compare decides one compare against the applied state. A value compare
// on an absent key fails whatever its op, as in etcd; the counters of an
// absent key are 0.
func compare(c messages.Compare, r record, ok bool) bool {
	var cmp int
	switch c.Target {
	case messages.CompareValue:
		if !ok {
			return false
		}
		cmp = bytes.Compare(r.value, c.Value)
	default:
		var v uint64
		switch c.Target {
		case messages.CompareVersion:
			v = r.version
		case messages.CompareCreateRevision:
			v = r.createRev
		case messages.CompareModRevision:
			v = r.modRev
		}
		switch {
		case v < c.Number:
			cmp = -1
		case v > c.Number:
			cmp = 1
		}
	}
	switch c.Op {
	case messages.CompareEqual:
		return cmp == 0
	case messages.CompareNotEqual:
		return cmp != 0
	case messages.CompareLess:
		return cmp < 0
	case messages.CompareGreater:
		return cmp > 0
	}
	return false
}

// applyTxn decides and runs t at revision rev. Only the member whose client
// waits reads (results); every member writes. A branch whose puts would take
// the data past quota is refused whole (ErrNoSpace), before it writes
// anything: a transaction is applied entirely or not at all.
func (s *store) applyTxn(t messages.Txn, rev, quota uint64, results bool) (bool, []messages.OpResult, error) {
	ok := true
	for _, c := range t.Compares {
		r, found, err := s.be.get(c.Key)
		if err != nil {
			return false, nil, err
		}
		if !compare(c, r, found) {
			ok = false
			break
		}
	}
	ops := t.Success
	if !ok {
		ops = t.Failure
	}
	if err := s.fitsQuota(ops, quota); err != nil {
		return ok, nil, err
	}
	var out []messages.OpResult
	if results {
		out = make([]messages.OpResult, len(ops))
	}
	for i, op := range ops {
		var res messages.OpResult
		switch op.Type {
		case messages.OpGet:
			if !results {
				continue
			}
			r, found, err := s.be.get(op.Key)
			if err != nil {
				return ok, nil, err
			}
			if found {
				res.KVs, res.Count = []messages.KV{r.kv(op.Key)}, 1
			}
		case messages.OpRange:
			if !results {
				continue
			}
			var err error
			if res, err = s.be.readRange(op.Range); err != nil {
				return ok, nil, err
			}
		case messages.OpPut:
			ch, err := s.be.put(op.Key, op.Value, rev, 0)
			if err != nil {
				return ok, nil, err
			}
			s.events = append(s.events, ch.event())
		case messages.OpDelete:
			n, err := s.deleteRange(op.Key, op.End, rev)
			if err != nil {
				return ok, nil, err
			}
			res.Deleted = n
		}
		if results {
			out[i] = res
		}
	}
	return ok, out, nil
}

// fitsQuota refuses a branch whose puts would take the used bytes past
// quota; deletes are never refused, as for single writes.
func (s *store) fitsQuota(ops []messages.TxnOp, quota uint64) error {
	if quota == 0 {
		return nil
	}
	used := int64(s.be.meta.used)
	grow := false
	for _, op := range ops {
		if op.Type != messages.OpPut {
			continue
		}
		used += int64(cost(op.Key, op.Value))
		r, found, err := s.be.get(op.Key)
		if err != nil {
			return err
		}
		if found {
			used -= int64(cost(op.Key, r.value))
		}
		grow = true
	}
	if grow && used > int64(quota) && used > int64(s.be.meta.used) {
		return fmt.Errorf("%w (%d bytes used of %d)", ErrNoSpace, s.be.meta.used, quota)
	}
	return nil
}

// deleteRange deletes key, or the keys in [key, end), at revision rev and
// says how many there were.
func (s *store) deleteRange(key, end string, rev uint64) (int, error) {
	keys := []string{key}
	if end != "" {
		keys = keys[:0]
		c := s.be.tx.Bucket(bucketKV).Cursor()
		for k, _ := c.Seek([]byte(key)); k != nil && inRange(string(k), key, end); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
	}
	n := 0
	for _, k := range keys {
		ch, ok, err := s.be.del(k, rev)
		if err != nil {
			return n, err
		}
		if ok {
			s.events = append(s.events, ch.event())
			n++
		}
	}
	return n, nil
}
