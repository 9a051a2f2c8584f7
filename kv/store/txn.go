package store

import (
	"bytes"

	"github.com/raftkv/node/messages"
)

// Decide evaluates t's compares against the state as written: true runs
// its success branch. A value compare on an absent key fails whatever its
// op, as in etcd; the counters of an absent key are 0.
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

// Txn decides t and runs the branch chosen at revision rev, all of it in
// the one entry. Only the member whose client waits reads (results); every
// member writes. The caller checked t (package apply), and the quota. A
// put of the branch naming a lease the state does not hold fails the whole
// transaction with messages.ErrLeaseNotFound before anything is written,
// as in etcd.
func (s *Store) Txn(t messages.Txn, rev uint64, results bool) (bool, []messages.OpResult, error) {
	ok, err := s.Decide(t)
	if err != nil {
		return false, nil, err
	}
	ops := t.Success
	if !ok {
		ops = t.Failure
	}
	for _, op := range ops {
		if op.Type == messages.OpPut {
			if err := s.checkLease(op.Lease); err != nil {
				return ok, nil, err
			}
		}
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
			r, found, err := s.get(op.Key)
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
			if res, err = s.Range(op.Range); err != nil {
				return ok, nil, err
			}
		case messages.OpPut:
			if err := s.Put(op.Key, op.Value, rev, op.Lease); err != nil {
				return ok, nil, err
			}
		case messages.OpDelete:
			n, err := s.DeleteRange(op.Key, op.End, rev)
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
