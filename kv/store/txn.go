package store

import (
	"bytes"
	"fmt"

	"github.com/raftkv/node/messages"
)

// Decide evaluates t's compares against the state as written: true runs
// its success branch. A value compare on an absent key fails whatever its
// op, as in etcd; the counters and the lease of an absent key are 0.
func (s *Store) Decide(t messages.Txn) (bool, error) {
	for _, c := range t.Compares {
		r, found, err := s.get(c.Key)
		if err != nil {
			return false, err
		}
		if !compare(c, r, found) {
			return false, nil
		}
	}
	return true, nil
}

// plan is a transaction's path, decided before any of it runs: whether
// its compares hold, and the plan of each nested transaction of the branch
// that runs, in order. etcd decides the compares of every nested
// transaction up front too (compareToPath in its etcdserver/txn), against
// the state before the outer one: a nested compare never sees the outer
// branch's earlier writes.
type plan struct {
	ok     bool
	nested []plan
}

// branch is the operations of t that run when its compares say ok.
func branch(t messages.Txn, ok bool) []messages.TxnOp {
	if ok {
		return t.Success
	}
	return t.Failure
}

// decide plans t against the state as written.
func (s *Store) decide(t messages.Txn) (plan, error) {
	ok, err := s.Decide(t)
	if err != nil {
		return plan{}, err
	}
	p := plan{ok: ok}
	for _, op := range branch(t, ok) {
		if op.Type != messages.OpTxn || op.Txn == nil {
			continue
		}
		np, err := s.decide(*op.Txn)
		if err != nil {
			return plan{}, err
		}
		p.nested = append(p.nested, np)
	}
	return p, nil
}

// Branch decides t as Txn would and returns whether its compares held and
// the operations that would run: the chosen branch, each nested
// transaction replaced by the operations of its own chosen branch. The
// quota (package apply) weighs its puts before Txn runs.
func (s *Store) Branch(t messages.Txn) (bool, []messages.TxnOp, error) {
	p, err := s.decide(t)
	if err != nil {
		return false, nil, err
	}
	return p.ok, flatten(t, p, nil), nil
}

func flatten(t messages.Txn, p plan, out []messages.TxnOp) []messages.TxnOp {
	nested := p.nested
	for _, op := range branch(t, p.ok) {
		if op.Type == messages.OpTxn {
			if op.Txn != nil && len(nested) > 0 {
				out = flatten(*op.Txn, nested[0], out)
				nested = nested[1:]
			}
			continue
		}
		out = append(out, op)
	}
	return out
}

// Txn decides t and runs the branch chosen at revision rev, all of it in
// the one entry; nested transactions run at the same revision, along the
// path decided up front (plan). Only the member whose client waits reads
// (results); every member writes. The caller checked t (package apply),
// and the quota. A put of the path naming a lease the state does not hold
// fails the whole transaction with messages.ErrLeaseNotFound, and one
// that keeps the value or lease of an absent key with
// messages.ErrNotFound, before anything is written, as in etcd.
func (s *Store) Txn(t messages.Txn, rev uint64, results bool) (bool, []messages.OpResult, error) {
	p, err := s.decide(t)
	if err != nil {
		return false, nil, err
	}
	if err := s.checkPath(t, p); err != nil {
		return p.ok, nil, err
	}
	out, err := s.run(t, p, rev, results)
	return p.ok, out, err
}

// checkPath refuses a path one of whose puts cannot be made: a lease the
// state does not hold, or a key that is absent when the put keeps its
// value or lease. No key is written twice in a transaction (package apply
// checks it), so whether a put's key exists is the same before the
// transaction and when the put runs.
func (s *Store) checkPath(t messages.Txn, p plan) error {
	nested := p.nested
	for _, op := range branch(t, p.ok) {
		switch op.Type {
		case messages.OpPut:
			if !op.IgnoreLease {
				if err := s.checkLease(op.Lease); err != nil {
					return err
				}
			}
			if (op.IgnoreValue || op.IgnoreLease) && s.be.Tx().Bucket(bucketKV).Get([]byte(op.Key)) == nil {
				// The message names no key: it may reach a log line.
				return fmt.Errorf("%w: a put keeping the value or lease of a key of %d bytes, which is absent", messages.ErrNotFound, len(op.Key))
			}
		case messages.OpTxn:
			if op.Txn == nil || len(nested) == 0 {
				continue
			}
			if err := s.checkPath(*op.Txn, nested[0]); err != nil {
				return err
			}
			nested = nested[1:]
		}
	}
	return nil
}

// run runs the branch p chose of t at revision rev, and returns its
// results if asked.
func (s *Store) run(t messages.Txn, p plan, rev uint64, results bool) ([]messages.OpResult, error) {
	ops := branch(t, p.ok)
	var out []messages.OpResult
	if results {
		out = make([]messages.OpResult, len(ops))
	}
	nested := p.nested
	for i, op := range ops {
		var res messages.OpResult
		switch op.Type {
		case messages.OpGet:
			if !results {
				continue
			}
			r, found, err := s.get(op.Key)
			if err != nil {
				return nil, err
			}
			if found {
				res.KVs, res.Count = []messages.KV{r.kv(op.Key)}, 1
			}
		case messages.OpRange:
			if !results {
				continue
			}
			var err error
			if res, err = s.Range(op.Range); err != nil {
				return nil, err
			}
		case messages.OpPut:
			prev, err := s.txnPut(op, rev, results && op.PrevKV)
			if err != nil {
				return nil, err
			}
			res.PrevKVs = prev
		case messages.OpDelete:
			n, prev, err := s.deleteRange(op.Key, op.End, rev, results && op.PrevKV)
			if err != nil {
				return nil, err
			}
			res.Deleted, res.PrevKVs = n, prev
		case messages.OpTxn:
			if op.Txn == nil || len(nested) == 0 {
				continue // package apply refuses it; nothing to run
			}
			np := nested[0]
			nested = nested[1:]
			sub, err := s.run(*op.Txn, np, rev, results)
			if err != nil {
				return nil, err
			}
			res.Succeeded, res.Results = np.ok, sub
		}
		if results {
			out[i] = res
		}
	}
	return out, nil
}

// txnPut makes a transaction's put at revision rev: with IgnoreValue or
// IgnoreLease it keeps the key's value or lease (checkPath saw the key
// exists); with prev it returns the key's previous record, if any.
func (s *Store) txnPut(op messages.TxnOp, rev uint64, prev bool) ([]messages.KV, error) {
	value, lease := op.Value, op.Lease
	var prevs []messages.KV
	if op.IgnoreValue || op.IgnoreLease || prev {
		r, found, err := s.get(op.Key) // its value is a copy: the put below may reuse the page
		if err != nil {
			return nil, err
		}
		if found {
			if op.IgnoreValue {
				value = r.value
			}
			if op.IgnoreLease {
				lease = r.lease
			}
			if prev {
				prevs = []messages.KV{r.kv(op.Key)}
			}
		}
	}
	return prevs, s.Put(op.Key, value, rev, lease)
}

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
		case messages.CompareLease:
			// An absent key's record is zero: lease 0. Ids are > 0
			// (an int64 in etcd), so they compare as unsigned alike.
			v = uint64(r.lease)
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
