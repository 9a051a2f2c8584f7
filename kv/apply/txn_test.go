package apply

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

var (
	opNames     = map[messages.CompareOp]string{messages.CompareEqual: "=", messages.CompareNotEqual: "!=", messages.CompareLess: "<", messages.CompareGreater: ">"}
	targetNames = map[messages.CompareTarget]string{messages.CompareValue: "value", messages.CompareVersion: "version", messages.CompareCreateRevision: "create_revision", messages.CompareModRevision: "mod_revision"}
	allOps      = []messages.CompareOp{messages.CompareEqual, messages.CompareNotEqual, messages.CompareLess, messages.CompareGreater}
)

// txnRunner applies transactions through an applier, each as the entry at
// the index it is given, under request ids of its own.
type txnRunner struct {
	ap    *Applier
	reqID uint64
}

// run applies txn as the entry at rev and returns the branch it ran, its
// results (read only if the client waits) and the error it was answered.
func (r *txnRunner) run(t *testing.T, txn messages.Txn, rev uint64, waiting func(uint64) bool) (bool, []messages.OpResult, error) {
	t.Helper()
	r.reqID++
	o := outcomeOf(t, r.ap, rev, txnData(r.reqID, txn), r.reqID, waiting)
	return o.Result.Succeeded, o.Result.Results, o.Err
}

// Every target with every op, on a present key and on an absent one, both
// by the store's decision on the compare alone and by the branch the
// applier runs for a transaction entry holding it.
func TestTxnCompare(t *testing.T) {
	st := tmpStore(t)
	putAt(t, st, "k", "a", 3)
	putAt(t, st, "other", "x", 4)
	putAt(t, st, "k", "m", 5) // k: value m, create 3, mod 5, version 2
	r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}

	// want holds the outcome of =, !=, <, > in that order, as T or F.
	type row struct {
		key    string
		target messages.CompareTarget
		value  string
		number uint64
		want   string
	}
	rows := []row{
		{"k", messages.CompareValue, "m", 0, "TFFF"},
		{"k", messages.CompareValue, "a", 0, "FTFT"},     // m > a
		{"k", messages.CompareValue, "z", 0, "FTTF"},     // m < z
		{"k", messages.CompareValue, "m\x00", 0, "FTTF"}, // a prefix sorts first
		{"k", messages.CompareValue, "", 0, "FTFT"},
		{"k", messages.CompareVersion, "", 2, "TFFF"},
		{"k", messages.CompareVersion, "", 1, "FTFT"},
		{"k", messages.CompareVersion, "", 3, "FTTF"},
		{"k", messages.CompareCreateRevision, "", 3, "TFFF"},
		{"k", messages.CompareCreateRevision, "", 2, "FTFT"},
		{"k", messages.CompareCreateRevision, "", 4, "FTTF"},
		{"k", messages.CompareModRevision, "", 5, "TFFF"},
		{"k", messages.CompareModRevision, "", 4, "FTFT"},
		{"k", messages.CompareModRevision, "", 6, "FTTF"},
		// An absent key: a value compare is false whatever the op and the
		// constant, as in etcd; its counters are 0.
		{"absent", messages.CompareValue, "", 0, "FFFF"},
		{"absent", messages.CompareValue, "m", 0, "FFFF"},
		{"absent", messages.CompareVersion, "", 0, "TFFF"},
		{"absent", messages.CompareVersion, "", 1, "FTTF"},
		{"absent", messages.CompareCreateRevision, "", 0, "TFFF"},
		{"absent", messages.CompareCreateRevision, "", 5, "FTTF"},
		{"absent", messages.CompareModRevision, "", 0, "TFFF"},
		{"absent", messages.CompareModRevision, "", 2, "FTTF"},
	}
	rev := uint64(10)
	for _, row := range rows {
		for i, op := range allOps {
			c := messages.Compare{Key: row.key, Target: row.target, Op: op, Value: []byte(row.value), Number: row.number}
			name := fmt.Sprintf("%s %s %s %q/%d", row.key, targetNames[row.target], opNames[op], row.value, row.number)
			want := row.want[i] == 'T'
			got, err := st.Decide(messages.Txn{Compares: []messages.Compare{c}})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: compare = %v, want %v", name, got, want)
			}
			// The same compare in a transaction picks its branch; each
			// branch writes a key of its own.
			rev++
			ok, res, err := r.run(t, messages.Txn{
				Compares: []messages.Compare{c},
				Success:  []messages.TxnOp{kvtest.TxnPut("branch", "success"), kvtest.TxnGet("branch")},
				Failure:  []messages.TxnOp{kvtest.TxnPut("branch", "failure"), kvtest.TxnGet("branch")},
			}, rev, waitAll)
			if err != nil {
				t.Fatalf("%s: apply: %v", name, err)
			}
			wantBranch := map[bool]string{true: "success", false: "failure"}[want]
			if ok != want || len(res) != 2 || len(res[1].KVs) != 1 || string(res[1].KVs[0].Value) != wantBranch {
				t.Errorf("%s: apply = %v %+v, want the %s branch", name, ok, res, wantBranch)
			}
		}
	}
}

// All compares must hold for success; a failed compare, with a failure
// branch that writes nothing, changes nothing: no revision, no event.
func TestTxnBranches(t *testing.T) {
	st := tmpStore(t)
	putAt(t, st, "a", "1", 1)
	putAt(t, st, "b", "2", 2)
	putAt(t, st, "c", "3", 3)
	st.TakeEvents()
	r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}

	t.Run("every compare must hold", func(t *testing.T) {
		ok, _, err := r.run(t, messages.Txn{
			Compares: []messages.Compare{
				kvtest.CmpNum("a", messages.CompareModRevision, messages.CompareEqual, 1),
				kvtest.CmpNum("b", messages.CompareModRevision, messages.CompareEqual, 99), // fails
				kvtest.CmpValue("c", messages.CompareEqual, "3"),
			},
		}, 4, waitAll)
		if err != nil || ok {
			t.Fatalf("apply = %v, %v; want the failure branch", ok, err)
		}
		// Neither writes: the second is applied at the same index, so
		// that the revisions below are those of the original test.
		ok, _, err = r.run(t, messages.Txn{Compares: []messages.Compare{
			kvtest.CmpNum("a", messages.CompareModRevision, messages.CompareEqual, 1),
			kvtest.CmpValue("c", messages.CompareEqual, "3"),
		}}, 4, waitAll)
		if err != nil || !ok {
			t.Fatalf("apply = %v, %v; want the success branch", ok, err)
		}
		if st.Revision() != 3 || len(st.TakeEvents()) != 0 || st.HistoryEvents() != 3 {
			t.Fatalf("a transaction without writes moved the revision to %d or made events (history %d)", st.Revision(), st.HistoryEvents())
		}
	})

	t.Run("reads see the branch's earlier writes", func(t *testing.T) {
		ok, res, err := r.run(t, messages.Txn{
			Compares: []messages.Compare{kvtest.CmpNum("new", messages.CompareCreateRevision, messages.CompareEqual, 0)},
			Success: []messages.TxnOp{
				kvtest.TxnGet("a"),
				kvtest.TxnPut("a", "10"),
				kvtest.TxnGet("a"),
				kvtest.TxnPut("new", "n"),
				kvtest.TxnDel("b"),
				kvtest.TxnGet("b"),
				kvtest.TxnRange(messages.Range{Start: "a", End: "d"}),
				kvtest.TxnDelRange("c", "d"),
				kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll, CountOnly: true}),
				kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll, KeysOnly: true, Limit: 1}),
				kvtest.TxnDel("absent"),
			},
		}, 5, waitAll)
		if err != nil || !ok {
			t.Fatalf("apply = %v, %v", ok, err)
		}
		want := []messages.OpResult{
			{KVs: []messages.KV{{Key: "a", Value: []byte("1"), CreateRevision: 1, ModRevision: 1, Version: 1}}, Count: 1},
			{},
			{KVs: []messages.KV{{Key: "a", Value: []byte("10"), CreateRevision: 1, ModRevision: 5, Version: 2}}, Count: 1},
			{},
			{Deleted: 1},
			{},
			{KVs: []messages.KV{
				{Key: "a", Value: []byte("10"), CreateRevision: 1, ModRevision: 5, Version: 2},
				{Key: "c", Value: []byte("3"), CreateRevision: 3, ModRevision: 3, Version: 1},
			}, Count: 2},
			{Deleted: 1},
			{Count: 2}, // a and new
			{KVs: []messages.KV{{Key: "a", CreateRevision: 1, ModRevision: 5, Version: 2}}, Count: 1, More: true},
			{Deleted: 0},
		}
		if !reflect.DeepEqual(res, want) {
			t.Fatalf("results\n%+v\nwant\n%+v", res, want)
		}
		if st.Revision() != 5 {
			t.Fatalf("revision %d, want 5", st.Revision())
		}
		// Events in the order the transaction made them, all at 5.
		var got []string
		for _, e := range st.TakeEvents() {
			got = append(got, fmt.Sprintf("%d %s@%d", e.Type, e.KV.Key, e.Revision()))
		}
		if want := "[1 a@5 1 new@5 2 b@5 2 c@5]"; fmt.Sprint(got) != want {
			t.Fatalf("events %v, want %s", got, want)
		}
	})

	t.Run("failure branch", func(t *testing.T) {
		ok, res, err := r.run(t, messages.Txn{
			Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")}, // it is 10
			Success:  []messages.TxnOp{kvtest.TxnPut("a", "never")},
			Failure:  []messages.TxnOp{kvtest.TxnPut("f", "1"), kvtest.TxnGet("a")},
		}, 6, waitAll)
		if err != nil || ok || len(res) != 2 || string(res[1].KVs[0].Value) != "10" {
			t.Fatalf("apply = %v %+v %v, want the failure branch reading a=10", ok, res, err)
		}
		if kv := getKV(t, st, "f"); kv.ModRevision != 6 || getKV(t, st, "a").ModRevision != 5 {
			t.Fatalf("f %+v, a %+v: want f written at 6 and a untouched", kv, getKV(t, st, "a"))
		}
	})

	// Only the member whose client waits reads; every member writes.
	t.Run("results only where a client waits", func(t *testing.T) {
		txn := messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("w", "1"), kvtest.TxnGet("w"), kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll}), kvtest.TxnDelRange("f", "g")}}
		ok, res, err := r.run(t, txn, 7, waitNone)
		if err != nil || !ok || res != nil {
			t.Fatalf("apply without results = %v %+v %v, want success and no results", ok, res, err)
		}
		if getKV(t, st, "w").ModRevision != 7 || getKV(t, st, "f").ModRevision != 0 || st.Revision() != 7 {
			t.Fatalf("the writes of a transaction without results were not made: w %+v f %+v", getKV(t, st, "w"), getKV(t, st, "f"))
		}
	})
}

// checkTxn refuses, before anything is proposed, a transaction that cannot
// be applied as asked.
func TestCheckTxnRefusals(t *testing.T) {
	many := func(n int, op messages.TxnOp) []messages.TxnOp {
		ops := make([]messages.TxnOp, n)
		for i := range ops {
			ops[i] = op
			if op.Type == messages.OpPut {
				ops[i].Key = fmt.Sprint("k", i)
			}
		}
		return ops
	}
	manyCompares := make([]messages.Compare, MaxTxnCompares+1)
	for i := range manyCompares {
		manyCompares[i] = kvtest.CmpNum("k", messages.CompareVersion, messages.CompareEqual, 0)
	}
	refused := []struct {
		name string
		txn  messages.Txn
	}{
		{"too many compares", messages.Txn{Compares: manyCompares}},
		{"too many success ops", messages.Txn{Success: many(MaxTxnOps+1, kvtest.TxnGet("k"))}},
		{"too many failure ops", messages.Txn{Failure: many(MaxTxnOps+1, kvtest.TxnPut("", "v"))}},
		{"compare with no key", messages.Txn{Compares: []messages.Compare{kvtest.CmpNum("", messages.CompareVersion, messages.CompareEqual, 0)}}},
		{"compare target 0", messages.Txn{Compares: []messages.Compare{{Key: "k", Op: messages.CompareEqual}}}},
		{"compare target 6", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: 6, Op: messages.CompareEqual}}}},
		{"compare op 0", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: messages.CompareVersion}}}},
		{"compare op 5", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: messages.CompareVersion, Op: 5}}}},
		{"op type 0", messages.Txn{Success: []messages.TxnOp{{Key: "k"}}}},
		{"op type 6", messages.Txn{Failure: []messages.TxnOp{{Type: 6, Key: "k"}}}},
		{"get with no key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnGet("")}}},
		{"put with no key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("", "v")}}},
		{"delete with no key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("")}}},
		{"range with no start", messages.Txn{Success: []messages.TxnOp{kvtest.TxnRange(messages.Range{End: "z"})}}},
		{"range with neither start nor end", messages.Txn{Success: []messages.TxnOp{kvtest.TxnRange(messages.Range{})}}},
		{"delete range with no start", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("", "z")}}},
		{"range at a revision", messages.Txn{Success: []messages.TxnOp{kvtest.TxnRange(messages.Range{Start: "a", End: "b", Revision: 3})}}},
		{"put twice", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnPut("k", "2")}}},
		{"put then delete", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnDel("k")}}},
		{"delete then put", messages.Txn{Failure: []messages.TxnOp{kvtest.TxnDel("k"), kvtest.TxnPut("k", "1")}}},
		{"delete twice", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("k"), kvtest.TxnDel("k")}}},
		{"put inside a delete range", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", "m"), kvtest.TxnPut("k", "1")}}},
		{"put before a delete range over it", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnDelRange("a", "m")}}},
		{"put inside a delete of every key from a start", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", store.RangeEndAll), kvtest.TxnPut("zz", "1")}}},
		{"delete inside a delete range", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("k"), kvtest.TxnDelRange("k", "l")}}},
		{"put twice, between other ops", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnGet("k"), kvtest.TxnPut("j", "2"), kvtest.TxnPut("k", "3")}}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if err := checkTxn(c.txn); !errors.Is(err, messages.ErrInvalidTxn) {
				t.Fatalf("checkTxn = %v, want ErrInvalidTxn", err)
			}
		})
	}

	accepted := []struct {
		name string
		txn  messages.Txn
	}{
		{"empty", messages.Txn{}},
		{"limits", messages.Txn{Compares: manyCompares[:MaxTxnCompares], Success: many(MaxTxnOps, kvtest.TxnPut("", "v")), Failure: many(MaxTxnOps, kvtest.TxnGet("k"))}},
		{"one key written in each branch", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1")}, Failure: []messages.TxnOp{kvtest.TxnDel("k")}}},
		{"reads of a written key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnGet("k"), kvtest.TxnPut("k", "1"), kvtest.TxnGet("k"), kvtest.TxnRange(messages.Range{Start: "k"})}}},
		{"put beside a delete range", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", "k"), kvtest.TxnPut("k", "1")}}},
		{"overlapping delete ranges", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", "m"), kvtest.TxnDelRange("c", "z")}}},
		{"delete every key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("", store.RangeEndAll)}}},
		{"range of every key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnRange(messages.Range{End: store.RangeEndAll})}}},
		{"binary keys", messages.Txn{Compares: []messages.Compare{kvtest.CmpValue("\x00", messages.CompareEqual, "\xff")}, Success: []messages.TxnOp{kvtest.TxnPut("\x00\xff", "\x00")}}},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			if err := checkTxn(c.txn); err != nil {
				t.Fatalf("checkTxn = %v, want nil", err)
			}
		})
	}
}

// sameTxn compares transactions as the encoding keeps them: an empty value
// and none are alike, in nested transactions too.
func sameTxn(a, b messages.Txn) bool { return reflect.DeepEqual(normTxn(a), normTxn(b)) }

func normTxn(t messages.Txn) messages.Txn {
	var out messages.Txn
	for _, c := range t.Compares {
		if len(c.Value) == 0 {
			c.Value = nil
		}
		out.Compares = append(out.Compares, c)
	}
	for _, ops := range []struct{ in, out *[]messages.TxnOp }{{&t.Success, &out.Success}, {&t.Failure, &out.Failure}} {
		for _, op := range *ops.in {
			if len(op.Value) == 0 {
				op.Value = nil
			}
			if op.Txn != nil {
				nested := normTxn(*op.Txn)
				op.Txn = &nested
			}
			*ops.out = append(*ops.out, op)
		}
	}
	return out
}

func codecTxns() []messages.Txn {
	return []messages.Txn{
		{},
		{Success: []messages.TxnOp{kvtest.TxnPut("k", "v")}},
		{
			Compares: []messages.Compare{
				kvtest.CmpNum("lock", messages.CompareCreateRevision, messages.CompareEqual, 0),
				kvtest.CmpValue("cfg", messages.CompareNotEqual, "old"),
				kvtest.CmpNum("v", messages.CompareVersion, messages.CompareLess, 1<<63),
				kvtest.CmpNum("m", messages.CompareModRevision, messages.CompareGreater, 300),
				kvtest.CmpValue("\x00\xff", messages.CompareEqual, "\x00\x80\xff"),
				kvtest.CmpValue("e", messages.CompareEqual, ""),
			},
			Success: []messages.TxnOp{
				kvtest.TxnPut("lock", "me"),
				kvtest.TxnGet("cfg"),
				kvtest.TxnPut("\xff\x00", "\x00\x00"),
				kvtest.TxnPut("empty", ""),
				kvtest.TxnDel("gone"),
				kvtest.TxnDelRange("p/", "p0"),
				kvtest.TxnDelRange("x", "y"),
				kvtest.TxnDelRange("\xff\x01", store.RangeEndAll),
				kvtest.TxnRange(messages.Range{Start: "a", End: "b", Limit: 7, KeysOnly: true}),
				kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll, CountOnly: true}),
				kvtest.TxnRange(messages.Range{Start: "a", Limit: store.MaxRangeLimit, KeysOnly: true, CountOnly: true}),
				kvtest.TxnRange(messages.Range{End: store.RangeEndAll}),
			},
			Failure: []messages.TxnOp{kvtest.TxnGet("lock"), kvtest.TxnRange(messages.Range{Start: "\x00", End: "\xff"})},
		},
		{Failure: []messages.TxnOp{kvtest.TxnPut(strings.Repeat("k", 300), strings.Repeat("v", 70000))}},
		// With leases (flag 4 and the lease after the flags).
		{
			Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")},
			Success: []messages.TxnOp{
				{Type: messages.OpPut, Key: "a", Value: []byte("2"), Lease: 7},
				kvtest.TxnGet("a"),
				{Type: messages.OpPut, Key: "b", Lease: math.MaxInt64},
				kvtest.TxnPut("c", "no lease"),
			},
			Failure: []messages.TxnOp{{Type: messages.OpPut, Key: "a", Value: []byte("3"), Lease: 1 << 40}, kvtest.TxnDel("b")},
		},
		// The etcd features below (flags 8, 16 and 32, compare target 5,
		// operation type 5); those above are pinned byte for byte
		// (TestEncodingsWithoutNewFeaturesUnchanged).
		{
			Compares: []messages.Compare{
				kvtest.CmpNum("l", messages.CompareLease, messages.CompareEqual, 7),
				kvtest.CmpNum("m", messages.CompareLease, messages.CompareGreater, math.MaxInt64),
			},
			Success: []messages.TxnOp{
				prevKV(kvtest.TxnPut("a", "1")),
				prevKV(leased("b", "2", 9)),
				prevKV(kvtest.TxnDel("c")),
				prevKV(kvtest.TxnDelRange("d", "e")),
				keep(kvtest.TxnPut("f", ""), true, false),
				keep(leased("g", "v", 3), true, false),
				keep(kvtest.TxnPut("h", "v"), false, true),
				prevKV(keep(kvtest.TxnPut("i", ""), true, true)),
			},
		},
		{
			Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")},
			Success: []messages.TxnOp{
				kvtest.TxnPut("a", "2"),
				nestedOp(messages.Txn{
					Compares: []messages.Compare{kvtest.CmpNum("b", messages.CompareVersion, messages.CompareEqual, 0)},
					Success:  []messages.TxnOp{kvtest.TxnPut("b", "1"), nestedOp(messages.Txn{Success: []messages.TxnOp{kvtest.TxnGet("a")}})},
					Failure:  []messages.TxnOp{prevKV(kvtest.TxnPut("b", "2")), kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll, Limit: 3, KeysOnly: true})},
				}),
				nestedOp(messages.Txn{}),
			},
			Failure: []messages.TxnOp{nestedOp(messages.Txn{Failure: []messages.TxnOp{kvtest.TxnDelRange("a", "b")}})},
		},
		{Success: []messages.TxnOp{deepTxn(MaxTxnDepth - 1)}},
	}
}

// prevKV asks op for the keys as they were.
func prevKV(op messages.TxnOp) messages.TxnOp {
	op.PrevKV = true
	return op
}

// keep makes a put keep the key's value (and drop its own), its lease
// (and drop its own), or both.
func keep(op messages.TxnOp, value, lease bool) messages.TxnOp {
	if value {
		op.IgnoreValue, op.Value = true, nil
	}
	if lease {
		op.IgnoreLease, op.Lease = true, 0
	}
	return op
}

// nestedOp is an operation running t.
func nestedOp(t messages.Txn) messages.TxnOp { return messages.TxnOp{Type: messages.OpTxn, Txn: &t} }

// deepTxn is an operation running a transaction that holds levels of
// transactions, each inside the one before: at depth d of its own, it
// makes the whole levels+1 deep.
func deepTxn(levels int) messages.TxnOp {
	t := messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("deep", "v")}}
	for range levels - 1 {
		t = messages.Txn{Success: []messages.TxnOp{nestedOp(t)}}
	}
	return nestedOp(t)
}

func TestTxnCodecRoundTrip(t *testing.T) {
	for i, txn := range codecTxns() {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if err := checkTxn(txn); err != nil {
				t.Fatalf("checkTxn: %v", err)
			}
			b := encodeTxn(txn)
			got, err := decodeTxn(b)
			if err != nil {
				t.Fatalf("decodeTxn: %v", err)
			}
			if !sameTxn(got, txn) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, txn)
			}
			if again := encodeTxn(got); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs")
			}
			// As a command of an entry, alone and in a batch.
			data := Command{Op: OpTxn, ReqID: 77, Value: b}.encode()
			c, err := decodeCommand(data)
			if err != nil || c.Op != OpTxn || c.ReqID != 77 || !bytes.Equal(c.Value, b) {
				t.Fatalf("decodeCommand = %+v, %v", brief(c), err)
			}
			batch, err := nativeFormat{}.Decode(EncodeBatch(5, [][]byte{data}, len(data)))
			if err != nil {
				t.Fatalf("decode the batch: %v", err)
			}
			var inBatch []Command
			if err := decodeBatch(batch.Value, func(c Command) error {
				inBatch = append(inBatch, c)
				return nil
			}); err != nil || len(inBatch) != 1 || inBatch[0].Op != OpTxn || inBatch[0].ReqID != 77 || !bytes.Equal(inBatch[0].Value, b) {
				t.Fatalf("the batch holds %d commands (%v), want the transaction", len(inBatch), err)
			}
		})
	}
}

// A limit past store.MaxRangeLimit is what a range read clamps; a transaction
// that checkTxn accepts must decode, or every member that applies it stops.
func TestTxnRangeLimitDecodes(t *testing.T) {
	for _, limit := range []int{-5, 0, 1, store.MaxRangeLimit, store.MaxRangeLimit + 1, 1 << 40} {
		txn := messages.Txn{Success: []messages.TxnOp{kvtest.TxnRange(messages.Range{Start: "a", End: store.RangeEndAll, Limit: limit})}}
		if err := checkTxn(txn); err != nil {
			continue // refused before it is proposed: as good
		}
		got, err := decodeTxn(encodeTxn(txn))
		if err != nil {
			t.Fatalf("limit %d: checkTxn accepts the transaction, decodeTxn refuses it: %v", limit, err)
		}
		if l := got.Success[0].Range.Limit; store.LimitOf(got.Success[0].Range) != store.LimitOf(txn.Success[0].Range) {
			t.Fatalf("limit %d decodes as %d: a page of %d keys, want %d", limit, l, store.LimitOf(got.Success[0].Range), store.LimitOf(txn.Success[0].Range))
		}
	}
}

// Every proper prefix of an encoded transaction, and one with trailing
// bytes, is refused: a cut entry must never apply as a smaller one.
func TestDecodeTxnMalformed(t *testing.T) {
	for i, txn := range codecTxns() {
		b := encodeTxn(txn)
		for n := range len(b) {
			if _, err := decodeTxn(b[:n]); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("txn %d: decodeTxn of the first %d of %d bytes = %v, want ErrBadCommand", i, n, len(b), err)
			}
		}
		for _, extra := range [][]byte{{0}, {1}, []byte("more")} {
			if _, err := decodeTxn(append(bytes.Clone(b), extra...)); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("txn %d with %q after it: %v, want ErrBadCommand", i, extra, err)
			}
		}
	}

	// Encodings of what checkTxn refuses are refused too (a peer's entry).
	bad := []struct {
		name string
		b    []byte
	}{
		{"compare count past the limit", binary.AppendUvarint(nil, MaxTxnCompares+1)},
		{"op count past the limit", []byte{0, 0x81, 0x01}},
		{"unknown compare target", encodeTxn(messages.Txn{Compares: []messages.Compare{{Key: "k", Target: 9, Op: messages.CompareEqual}}})},
		{"unknown op type", encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: 9, Key: "k"}}})},
		{"a key written twice", encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnPut("k", "2")}})},
		{"a put with no key", encodeTxn(messages.Txn{Failure: []messages.TxnOp{kvtest.TxnPut("", "1")}})},
		{"a field length past the end", []byte{1, byte(messages.CompareValue), byte(messages.CompareEqual), 9, 'k'}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeTxn(c.b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeTxn = %v, want ErrBadCommand", err)
			}
		})
	}

	// An OpTxn command carries its keys in its Value: one with a key is
	// malformed.
	data := Command{Op: OpTxn, ReqID: 1, Key: "k", Value: encodeTxn(messages.Txn{})}.encode()
	if _, err := decodeCommand(data); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("decodeCommand of a transaction with a key = %v, want ErrBadCommand", err)
	}
}
