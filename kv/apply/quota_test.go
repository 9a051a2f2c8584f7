package apply

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// storeMeta is what a refused write must leave as it was.
type storeMeta struct {
	used      uint64
	keys      int
	revision  uint64
	history   uint64
	compacted uint64
}

func metaOf(st *store.Store) storeMeta {
	return storeMeta{st.Used(), st.Keys(), st.Revision(), st.HistoryEvents(), st.Compacted()}
}

// costOf is store.Cost of key with a value of n bytes.
func costOf(key string, n int) uint64 { return store.Cost(key, make([]byte, n)) }

// filler is a value of n bytes.
func filler(n int) string { return strings.Repeat("v", n) }

// The quota on lone puts and deletes (what the backend's put decided
// before the split, TestBackendQuota): a put that takes the data past the
// quota is refused, one that shrinks a value passes, deletes free room.
func TestPutQuota(t *testing.T) {
	st := tmpStore(t)
	quota := costOf("a", 100) + costOf("b", 50)
	ap := newApplier(t, st, FormatNative, quota)
	var reqID uint64
	put := func(idx uint64, key string, n int) error {
		t.Helper()
		reqID++
		data := Command{Op: OpPut, ReqID: reqID, Key: key, Value: make([]byte, n)}.encode()
		return outcomeOf(t, ap, idx, data, reqID, waitAll).Err
	}
	if err := put(1, "a", 100); err != nil {
		t.Fatal(err)
	}
	if err := put(2, "b", 50); err != nil {
		t.Fatal(err)
	}
	if err := put(3, "c", 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("a put past the quota: %v, want ErrNoSpace", err)
	}
	if err := put(3, "a", 101); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("growing a value past the quota: %v, want ErrNoSpace", err)
	}
	if _, ok, err := st.Get("c"); err != nil || ok {
		t.Fatalf("a refused put was written (%v)", err)
	}
	if err := put(4, "a", 10); err != nil {
		t.Fatalf("shrinking a value: %v", err)
	}
	if err := put(5, "c", 0); err != nil {
		t.Fatalf("a put after room was freed: %v", err)
	}
	reqID++
	if o := outcomeOf(t, ap, 6, Command{Op: OpDelete, ReqID: reqID, Key: "b"}.encode(), reqID, waitAll); o.Err != nil {
		t.Fatal(o.Err)
	}
	if st.Used() != costOf("a", 10)+costOf("c", 0) {
		t.Fatalf("used %d", st.Used())
	}
}

// A branch whose puts would take the data past the quota is refused whole,
// before it writes anything; deletes are never refused.
func TestTxnQuota(t *testing.T) {
	st := tmpStore(t)
	big := strings.Repeat("v", 50)
	quota := store.Cost("a", []byte(big)) + store.Cost("b", []byte(big)) + 10
	putAt(t, st, "a", big, 1)
	st.TakeEvents()
	before := metaOf(st)
	// An applier per quota: the quota is the applier's configuration.
	runner := func(quota uint64) *txnRunner {
		return &txnRunner{ap: newApplier(t, st, FormatNative, quota), reqID: quota << 8}
	}

	cases := []struct {
		name string
		txn  messages.Txn
		want error
	}{
		{"two puts that fit alone, not together", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("b", big), kvtest.TxnPut("c", "x")}}, ErrNoSpace},
		{"a delete of an absent key frees nothing", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("z"), kvtest.TxnPut("b", big), kvtest.TxnPut("c", big)}}, ErrNoSpace},
		{"a value grown past the quota", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", big+big+big)}}, ErrNoSpace},
		{"the failure branch is the one judged", messages.Txn{
			Compares: []messages.Compare{kvtest.CmpNum("a", messages.CompareVersion, messages.CompareEqual, 7)},
			Success:  []messages.TxnOp{kvtest.TxnPut("x", "small")},
			Failure:  []messages.TxnOp{kvtest.TxnPut("b", big), kvtest.TxnPut("c", big)},
		}, ErrNoSpace},
	}
	r := runner(quota)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := r.run(t, c.txn, 9, waitAll)
			if !errors.Is(err, c.want) {
				t.Fatalf("apply: %v, want %v", err, c.want)
			}
			if m := metaOf(st); m != before || len(st.TakeEvents()) != 0 {
				t.Fatalf("a refused transaction changed the meta data %+v -> %+v or made events", before, m)
			}
			if kv := getKV(t, st, "b"); kv.ModRevision != 0 {
				t.Fatalf("a refused transaction wrote b: %+v", kv)
			}
		})
	}

	// The same branch fits under a larger quota; shrinking fits at the edge.
	if _, _, err := runner(quota+store.Cost("c", nil)).run(t, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("b", big), kvtest.TxnPut("c", "")}}, 10, waitAll); err != nil {
		t.Fatalf("a branch within the quota: %v", err)
	}
	// Now over the (smaller) quota: a delete-only branch and a shrinking put
	// still pass.
	r = runner(store.Cost("x", nil))
	for i, txn := range []messages.Txn{
		{Success: []messages.TxnOp{kvtest.TxnDelRange("a", "b")}},
		{Success: []messages.TxnOp{kvtest.TxnPut("b", "short")}},
		{Success: []messages.TxnOp{kvtest.TxnDel("c"), kvtest.TxnDel("absent")}},
	} {
		if _, _, err := r.run(t, txn, uint64(11+i), waitAll); err != nil {
			t.Fatalf("transaction %d that frees room, over the quota: %v", i, err)
		}
	}
	if st.Keys() != 1 || st.Revision() != 13 {
		t.Fatalf("keys %d revision %d, want b alone at 13", st.Keys(), st.Revision())
	}
}

// oldRule is the quota as the store decided it before the applier's
// writers (backend.put for a lone put, store.fitsQuota for a branch):
// refused iff quota > 0, the ops hold a put, and the used bytes after them
// exceed both the quota and the used bytes before, counting each put's
// cost less that of the value it replaces, and no delete.
func oldRule(t *testing.T, st *store.Store, quota uint64, ops []messages.TxnOp) bool {
	t.Helper()
	before := int64(st.Used())
	after, grow := before, false
	for _, op := range ops {
		if op.Type != messages.OpPut {
			continue
		}
		grow = true
		after += int64(store.Cost(op.Key, op.Value))
		if kv, ok, err := st.Get(op.Key); err != nil {
			t.Fatal(err)
		} else if ok {
			after -= int64(store.Cost(op.Key, kv.Value))
		}
	}
	return quota > 0 && grow && after > int64(quota) && after > before
}

// The quota writer decides every write exactly as the old rule did, on the
// branch a transaction's compares choose: far under the quota by its fast
// path (no record read, mayExceed false), near it or over it by the
// records of the keys written.
func TestQuotaDecidesAsTheOldRule(t *testing.T) {
	// over is a state already past quotaOver: only writes that do not grow
	// the data pass.
	over := map[string]int{"a": 200, "b": 100}
	quotaOver := costOf("a", 200)
	aIs := func(version uint64) []messages.Compare {
		return []messages.Compare{kvtest.CmpNum("a", messages.CompareVersion, messages.CompareEqual, version)}
	}
	cases := []struct {
		name  string
		state map[string]int // key → value length, written before
		quota uint64
		// The write: a lone put or delete (op), or a transaction.
		op  *messages.TxnOp
		txn *messages.Txn
		// refused is the old rule's answer (checked against oldRule);
		// fast that the quota writer decides it from sizes alone.
		refused, fast bool
	}{
		// Lone puts.
		{name: "put far under the quota", quota: 1 << 20, op: new(kvtest.TxnPut("k", filler(10))), fast: true},
		{name: "put replacing a value far under the quota", state: map[string]int{"a": 100}, quota: 1 << 20,
			op: new(kvtest.TxnPut("a", filler(200))), fast: true},
		{name: "put of a new key reaching the quota exactly", state: map[string]int{"a": 100}, quota: costOf("a", 100) + costOf("b", 50),
			op: new(kvtest.TxnPut("b", filler(50))), fast: true},
		{name: "put of a new key one byte past the quota", state: map[string]int{"a": 100}, quota: costOf("a", 100) + costOf("b", 50) - 1,
			op: new(kvtest.TxnPut("b", filler(50))), refused: true},
		{name: "put growing a value one byte past the quota", state: map[string]int{"a": 100}, quota: costOf("a", 100),
			op: new(kvtest.TxnPut("a", filler(101))), refused: true},
		{name: "put growing a value within the quota, near it", state: map[string]int{"a": 100}, quota: costOf("a", 100) + 10,
			op: new(kvtest.TxnPut("a", filler(105)))},
		{name: "put growing a value to the quota exactly", state: map[string]int{"a": 100}, quota: costOf("a", 100) + 10,
			op: new(kvtest.TxnPut("a", filler(110)))},
		{name: "put replacing a larger value over the quota", state: over, quota: quotaOver,
			op: new(kvtest.TxnPut("a", filler(100)))},
		{name: "put replacing a value of its size over the quota", state: over, quota: quotaOver,
			op: new(kvtest.TxnPut("a", filler(200)))},
		{name: "put of an empty value under a new key over the quota", state: over, quota: quotaOver,
			op: new(kvtest.TxnPut("c", "")), refused: true},
		{name: "put without a quota", state: map[string]int{"a": 100}, op: new(kvtest.TxnPut("b", filler(1<<16)))},
		// Lone deletes are never refused.
		{name: "delete over the quota", state: over, quota: quotaOver, op: new(kvtest.TxnDel("a"))},
		{name: "delete of an absent key over the quota", state: over, quota: quotaOver, op: new(kvtest.TxnDel("z"))},
		// Transactions: the branch the compares choose is judged.
		{name: "transaction far under the quota", state: map[string]int{"a": 10}, quota: 1 << 20,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("x", filler(10)), kvtest.TxnPut("y", filler(10))}}, fast: true},
		{name: "transaction whose puts reach the quota exactly", state: map[string]int{"a": 100}, quota: costOf("a", 100) + costOf("x", 10) + costOf("y", 20),
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("x", filler(10)), kvtest.TxnPut("y", filler(20))}}, fast: true},
		{name: "transaction whose puts go one byte past the quota", state: map[string]int{"a": 100}, quota: costOf("a", 100) + costOf("x", 10) + costOf("y", 20) - 1,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("x", filler(10)), kvtest.TxnPut("y", filler(20))}}, refused: true},
		{name: "success chosen, fits by replacing; failure would not", state: map[string]int{"a": 100}, quota: costOf("a", 100) + 10,
			txn: &messages.Txn{Compares: aIs(1),
				Success: []messages.TxnOp{kvtest.TxnPut("a", filler(105))},
				Failure: []messages.TxnOp{kvtest.TxnPut("b", filler(100))}}},
		{name: "failure chosen, does not fit; success would", state: map[string]int{"a": 100}, quota: costOf("a", 100) + 10,
			txn: &messages.Txn{Compares: aIs(2),
				Success: []messages.TxnOp{kvtest.TxnPut("a", filler(105))},
				Failure: []messages.TxnOp{kvtest.TxnPut("b", filler(100))}}, refused: true},
		{name: "failure chosen, shrinks; success would not fit", state: map[string]int{"a": 100}, quota: costOf("a", 100) + 10,
			txn: &messages.Txn{Compares: aIs(2),
				Success: []messages.TxnOp{kvtest.TxnPut("b", filler(100))},
				Failure: []messages.TxnOp{kvtest.TxnPut("a", filler(50))}}},
		{name: "branch chosen fits exactly, the other far over", state: map[string]int{"a": 100}, quota: costOf("a", 100) + costOf("b", 10),
			txn: &messages.Txn{Compares: aIs(1),
				Success: []messages.TxnOp{kvtest.TxnPut("b", filler(10))},
				Failure: []messages.TxnOp{kvtest.TxnPut("c", filler(1<<16))}}},
		{name: "a delete in the branch makes no room (the rule counts puts)", state: map[string]int{"a": 100}, quota: costOf("a", 100) + 10,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("a"), kvtest.TxnPut("b", filler(100))}}, refused: true},
		{name: "delete-only transaction over the quota", state: over, quota: quotaOver,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("a"), kvtest.TxnDelRange("b", "c")}}},
		{name: "read-only transaction over the quota", state: over, quota: quotaOver,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnGet("a"), kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll})}}},
		{name: "puts replacing larger values over the quota", state: over, quota: quotaOver,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", filler(100)), kvtest.TxnPut("b", filler(50))}}},
		{name: "puts growing the data over the quota though one shrinks", state: over, quota: quotaOver,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", filler(100)), kvtest.TxnPut("c", filler(80))}}, refused: true},
		{name: "puts leaving the data as it was over the quota", state: over, quota: quotaOver,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", filler(100)), kvtest.TxnPut("c", filler(100-1-32))}}},
		{name: "transaction without a quota", state: over,
			txn: &messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("c", filler(1<<16))}}},
	}
	var fast, slow int
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tmpStore(t)
			for i, k := range slices.Sorted(maps.Keys(c.state)) {
				putAt(t, st, k, filler(c.state[k]), uint64(i+1))
			}
			// What the old rule says, on the branch the compares choose.
			var data []byte
			var ops, mayGrow []messages.TxnOp
			const reqID, idx = 77, 100
			switch {
			case c.op != nil && c.op.Type == messages.OpPut:
				data = putData(reqID, c.op.Key, string(c.op.Value))
				ops, mayGrow = []messages.TxnOp{*c.op}, []messages.TxnOp{*c.op}
			case c.op != nil:
				data = Command{Op: OpDelete, ReqID: reqID, Key: c.op.Key}.encode()
				ops = []messages.TxnOp{*c.op}
			default:
				if err := checkTxn(*c.txn); err != nil {
					t.Fatalf("checkTxn: %v", err)
				}
				data = txnData(reqID, *c.txn)
				ok, err := st.Decide(*c.txn)
				if err != nil {
					t.Fatal(err)
				}
				ops = c.txn.Failure
				if ok {
					ops = c.txn.Success
				}
				mayGrow = append(slices.Clone(c.txn.Success), c.txn.Failure...)
			}
			if got := oldRule(t, st, c.quota, ops); got != c.refused {
				t.Fatalf("the old rule refuses: %v; the case says %v", got, c.refused)
			}
			// Which path the quota writer takes.
			if c.quota > 0 && mayGrow != nil {
				q := quotaWriter{writer: storeWriter{st}, st: st, quota: c.quota}
				isFast := !q.mayExceed(ops)
				if c.txn != nil {
					isFast = !q.mayExceed(c.txn.Success) && !q.mayExceed(c.txn.Failure)
				}
				if isFast != c.fast {
					t.Fatalf("decided from sizes alone: %v, the case says %v", isFast, c.fast)
				}
				if isFast {
					fast++
				} else {
					slow++
				}
			}

			before, was := metaOf(st), dataOf(t, st)
			o := outcomeOf(t, newApplier(t, st, FormatNative, c.quota), idx, data, reqID, waitAll)
			if c.refused {
				if !errors.Is(o.Err, ErrNoSpace) || !errors.Is(o.Result.Err, ErrNoSpace) {
					t.Fatalf("answered %+v, want ErrNoSpace", o)
				}
				if m, now := metaOf(st), dataOf(t, st); m != before || !maps.Equal(now, was) {
					t.Fatalf("a refused write changed the store: %+v -> %+v", before, m)
				}
				return
			}
			if o.Err != nil {
				t.Fatalf("answered %v, want success", o.Err)
			}
			for _, op := range ops {
				kv := getKV(t, st, op.Key)
				switch op.Type {
				case messages.OpPut:
					if kv.ModRevision != idx || string(kv.Value) != string(op.Value) {
						t.Errorf("%q = %+v, want the put's value written at %d", op.Key, kv, idx)
					}
				case messages.OpDelete:
					if kv.ModRevision != 0 {
						t.Errorf("%q = %+v, want it deleted", op.Key, kv)
					}
				}
			}
		})
	}
	if !t.Failed() && (fast == 0 || slow == 0) {
		t.Fatalf("%d cases decided from sizes alone, %d from the records: want both paths", fast, slow)
	}
	t.Logf("%d cases decided from sizes alone, %d from the records", fast, slow)
}
