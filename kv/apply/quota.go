package apply

import (
	"errors"
	"fmt"

	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// ErrNoSpace is the answer to a write that would take the data's used
// space past the quota (--quota-backend-bytes). Nothing was written;
// deletes are never refused, and free space for later writes.
var ErrNoSpace = errors.New("database space exceeded: the write would take the data past the quota")

// quotaWriter refuses, with ErrNoSpace, a put or a transaction's branch
// that takes the used bytes past quota, and passes everything else to the
// writer it wraps, as etcd's quota applier wraps its applier. A write is
// refused only if it grows the data: one that replaces a value by a
// shorter one passes over the quota. Whether it fits depends only on the
// log applied so far, so every member decides alike.
type quotaWriter struct {
	writer
	st    *store.Store
	quota uint64
}

// put counts a put with a lease as one without: its cost is its key and
// value (store.Cost).
func (q quotaWriter) put(key string, value []byte, lease int64, rev uint64) error {
	if err := q.fits([]messages.TxnOp{{Type: messages.OpPut, Key: key, Value: value, Lease: lease}}); err != nil {
		return err
	}
	return q.writer.put(key, value, lease, rev)
}

func (q quotaWriter) txn(t messages.Txn, rev uint64, results bool) (bool, []messages.OpResult, error) {
	if q.mayExceed(t.Success) || q.mayExceed(t.Failure) {
		// Near the quota: which branches run, nested ones included,
		// decides.
		ok, ops, err := q.st.Branch(t)
		if err != nil {
			return false, nil, err
		}
		if err := q.fits(ops); err != nil {
			return ok, nil, err
		}
	}
	return q.writer.txn(t, rev, results)
}

// mayExceed says whether ops' puts, in both branches of every nested
// transaction too, could take the data past the quota, from their sizes
// alone: if the data stays within it even were every put a new key, the
// writes fit, and no record need be read. A put that keeps the key's
// value grows nothing (its key exists, or the transaction fails), and
// counts what its empty value costs, more than that.
func (q quotaWriter) mayExceed(ops []messages.TxnOp) bool {
	return q.st.Used()+putCosts(ops) > q.quota
}

// putCosts is what ops' puts would cost were each a new key.
func putCosts(ops []messages.TxnOp) uint64 {
	var n uint64
	for _, op := range ops {
		switch {
		case op.Type == messages.OpPut:
			n += store.Cost(op.Key, op.Value)
		case op.Type == messages.OpTxn && op.Txn != nil:
			n += putCosts(op.Txn.Success) + putCosts(op.Txn.Failure)
		}
	}
	return n
}

// fits refuses ops (the operations that run: store.Store.Branch) whose
// puts would take the used bytes past the quota; deletes are never
// refused. A put that keeps the key's value (IgnoreValue) costs what the
// key costs now: it grows nothing.
func (q quotaWriter) fits(ops []messages.TxnOp) error {
	if !q.mayExceed(ops) {
		return nil
	}
	before := q.st.Used()
	used := int64(before)
	grow := false
	for _, op := range ops {
		if op.Type != messages.OpPut {
			continue
		}
		old, found, err := q.st.CostOf(op.Key)
		if err != nil {
			return err
		}
		switch {
		case op.IgnoreValue:
			// The key's value again; an absent key fails the
			// transaction with messages.ErrNotFound (store's Txn).
			continue
		case found:
			used -= int64(old)
		}
		used += int64(store.Cost(op.Key, op.Value))
		grow = true
	}
	if grow && used > int64(q.quota) && used > int64(before) {
		return fmt.Errorf("%w (%d bytes used of %d)", ErrNoSpace, before, q.quota)
	}
	return nil
}
