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
		// Near the quota: which branch runs decides.
		ok, err := q.st.Decide(t)
		if err != nil {
			return false, nil, err
		}
		ops := t.Success
		if !ok {
			ops = t.Failure
		}
		if err := q.fits(ops); err != nil {
			return ok, nil, err
		}
	}
	return q.writer.txn(t, rev, results)
}

// mayExceed says whether ops' puts could take the data past the quota,
// from their sizes alone: if the data stays within it even were every put
// a new key, the writes fit, and no record need be read.
func (q quotaWriter) mayExceed(ops []messages.TxnOp) bool {
	used := q.st.Used()
	for _, op := range ops {
		if op.Type == messages.OpPut {
			used += store.Cost(op.Key, op.Value)
		}
	}
	return used > q.quota
}

// fits refuses ops (one branch) whose puts would take the used bytes past
// the quota; deletes are never refused.
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
		used += int64(store.Cost(op.Key, op.Value))
		old, found, err := q.st.CostOf(op.Key)
		if err != nil {
			return err
		}
		if found {
			used -= int64(old)
		}
		grow = true
	}
	if grow && used > int64(q.quota) && used > int64(before) {
		return fmt.Errorf("%w (%d bytes used of %d)", ErrNoSpace, before, q.quota)
	}
	return nil
}
