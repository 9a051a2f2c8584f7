package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkv/node/messages"
)

// newTestStore is an empty store in a State of its own, closed when the
// test ends.
func newTestStore(t testing.TB) *store {
	t.Helper()
	return openTestState(t, FormatNative).st
}

func mustPut(t testing.TB, s *store, key, value string, rev uint64) {
	t.Helper()
	ch, err := s.be.put(key, []byte(value), rev, 0)
	if err != nil {
		t.Fatalf("put %q at %d: %v", key, rev, err)
	}
	s.events = append(s.events, ch.event())
}

func mustDel(t testing.TB, s *store, key string, rev uint64) {
	t.Helper()
	if _, err := s.deleteRange(key, "", rev); err != nil {
		t.Fatalf("delete %q at %d: %v", key, rev, err)
	}
}

// kvOf reads key as the store holds it (zero when absent).
func kvOf(t testing.TB, s *store, key string) messages.KV {
	t.Helper()
	kv, ok, err := s.get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !ok {
		return messages.KV{}
	}
	return kv
}

func txnPut(key, value string) messages.TxnOp {
	return messages.TxnOp{Type: messages.OpPut, Key: key, Value: []byte(value)}
}
func txnDel(key string) messages.TxnOp { return messages.TxnOp{Type: messages.OpDelete, Key: key} }
func txnDelRange(start, end string) messages.TxnOp {
	return messages.TxnOp{Type: messages.OpDelete, Key: start, End: end}
}
func txnGet(key string) messages.TxnOp { return messages.TxnOp{Type: messages.OpGet, Key: key} }
func txnRange(r messages.Range) messages.TxnOp {
	return messages.TxnOp{Type: messages.OpRange, Range: r}
}
func cmpNum(key string, target messages.CompareTarget, op messages.CompareOp, n uint64) messages.Compare {
	return messages.Compare{Key: key, Target: target, Op: op, Number: n}
}
func cmpValue(key string, op messages.CompareOp, v string) messages.Compare {
	return messages.Compare{Key: key, Target: messages.CompareValue, Op: op, Value: []byte(v)}
}

var (
	opNames     = map[messages.CompareOp]string{messages.CompareEqual: "=", messages.CompareNotEqual: "!=", messages.CompareLess: "<", messages.CompareGreater: ">"}
	targetNames = map[messages.CompareTarget]string{messages.CompareValue: "value", messages.CompareVersion: "version", messages.CompareCreateRevision: "create_revision", messages.CompareModRevision: "mod_revision"}
	allOps      = []messages.CompareOp{messages.CompareEqual, messages.CompareNotEqual, messages.CompareLess, messages.CompareGreater}
)

// Every target with every op, on a present key and on an absent one, both
// by compare itself and by the branch applyTxn runs.
func TestTxnCompare(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "k", "a", 3)
	mustPut(t, s, "other", "x", 4)
	mustPut(t, s, "k", "m", 5) // k: value m, create 3, mod 5, version 2

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
	for _, r := range rows {
		for i, op := range allOps {
			c := messages.Compare{Key: r.key, Target: r.target, Op: op, Value: []byte(r.value), Number: r.number}
			name := fmt.Sprintf("%s %s %s %q/%d", r.key, targetNames[r.target], opNames[op], r.value, r.number)
			want := r.want[i] == 'T'
			rec, found, err := s.be.get(r.key)
			if err != nil {
				t.Fatal(err)
			}
			if got := compare(c, rec, found); got != want {
				t.Errorf("%s: compare = %v, want %v", name, got, want)
			}
			// The same compare in a transaction picks its branch; each
			// branch writes a key of its own.
			rev++
			ok, res, err := s.applyTxn(messages.Txn{
				Compares: []messages.Compare{c},
				Success:  []messages.TxnOp{txnPut("branch", "success"), txnGet("branch")},
				Failure:  []messages.TxnOp{txnPut("branch", "failure"), txnGet("branch")},
			}, rev, 0, true)
			if err != nil {
				t.Fatalf("%s: applyTxn: %v", name, err)
			}
			wantBranch := map[bool]string{true: "success", false: "failure"}[want]
			if ok != want || len(res) != 2 || len(res[1].KVs) != 1 || string(res[1].KVs[0].Value) != wantBranch {
				t.Errorf("%s: applyTxn = %v %+v, want the %s branch", name, ok, res, wantBranch)
			}
		}
	}
}

// All compares must hold for success; a failed compare, with a failure
// branch that writes nothing, changes nothing: no revision, no event.
func TestTxnBranches(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "a", "1", 1)
	mustPut(t, s, "b", "2", 2)
	mustPut(t, s, "c", "3", 3)
	s.takeEvents()

	t.Run("every compare must hold", func(t *testing.T) {
		ok, _, err := s.applyTxn(messages.Txn{
			Compares: []messages.Compare{
				cmpNum("a", messages.CompareModRevision, messages.CompareEqual, 1),
				cmpNum("b", messages.CompareModRevision, messages.CompareEqual, 99), // fails
				cmpValue("c", messages.CompareEqual, "3"),
			},
		}, 4, 0, true)
		if err != nil || ok {
			t.Fatalf("applyTxn = %v, %v; want the failure branch", ok, err)
		}
		ok, _, err = s.applyTxn(messages.Txn{Compares: []messages.Compare{
			cmpNum("a", messages.CompareModRevision, messages.CompareEqual, 1),
			cmpValue("c", messages.CompareEqual, "3"),
		}}, 4, 0, true)
		if err != nil || !ok {
			t.Fatalf("applyTxn = %v, %v; want the success branch", ok, err)
		}
		if s.revision() != 3 || len(s.takeEvents()) != 0 || s.be.meta.histEvents != 3 {
			t.Fatalf("a transaction without writes moved the revision to %d or made events (history %d)", s.revision(), s.be.meta.histEvents)
		}
	})

	t.Run("reads see the branch's earlier writes", func(t *testing.T) {
		ok, res, err := s.applyTxn(messages.Txn{
			Compares: []messages.Compare{cmpNum("new", messages.CompareCreateRevision, messages.CompareEqual, 0)},
			Success: []messages.TxnOp{
				txnGet("a"),
				txnPut("a", "10"),
				txnGet("a"),
				txnPut("new", "n"),
				txnDel("b"),
				txnGet("b"),
				txnRange(messages.Range{Start: "a", End: "d"}),
				txnDelRange("c", "d"),
				txnRange(messages.Range{Start: "a", End: rangeEndAll, CountOnly: true}),
				txnRange(messages.Range{Start: "a", End: rangeEndAll, KeysOnly: true, Limit: 1}),
				txnDel("absent"),
			},
		}, 5, 0, true)
		if err != nil || !ok {
			t.Fatalf("applyTxn = %v, %v", ok, err)
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
		if s.revision() != 5 {
			t.Fatalf("revision %d, want 5", s.revision())
		}
		// Events in the order the transaction made them, all at 5.
		var got []string
		for _, e := range s.takeEvents() {
			got = append(got, fmt.Sprintf("%d %s@%d", e.Type, e.KV.Key, e.Revision()))
		}
		if want := "[1 a@5 1 new@5 2 b@5 2 c@5]"; fmt.Sprint(got) != want {
			t.Fatalf("events %v, want %s", got, want)
		}
	})

	t.Run("failure branch", func(t *testing.T) {
		ok, res, err := s.applyTxn(messages.Txn{
			Compares: []messages.Compare{cmpValue("a", messages.CompareEqual, "1")}, // it is 10
			Success:  []messages.TxnOp{txnPut("a", "never")},
			Failure:  []messages.TxnOp{txnPut("f", "1"), txnGet("a")},
		}, 6, 0, true)
		if err != nil || ok || len(res) != 2 || string(res[1].KVs[0].Value) != "10" {
			t.Fatalf("applyTxn = %v %+v %v, want the failure branch reading a=10", ok, res, err)
		}
		if kv := kvOf(t, s, "f"); kv.ModRevision != 6 || kvOf(t, s, "a").ModRevision != 5 {
			t.Fatalf("f %+v, a %+v: want f written at 6 and a untouched", kv, kvOf(t, s, "a"))
		}
	})

	// Only the member whose client waits reads; every member writes.
	t.Run("results only where a client waits", func(t *testing.T) {
		txn := messages.Txn{Success: []messages.TxnOp{txnPut("w", "1"), txnGet("w"), txnRange(messages.Range{Start: "a", End: rangeEndAll}), txnDelRange("f", "g")}}
		ok, res, err := s.applyTxn(txn, 7, 0, false)
		if err != nil || !ok || res != nil {
			t.Fatalf("applyTxn without results = %v %+v %v, want success and no results", ok, res, err)
		}
		if kvOf(t, s, "w").ModRevision != 7 || kvOf(t, s, "f").ModRevision != 0 || s.revision() != 7 {
			t.Fatalf("the writes of a transaction without results were not made: w %+v f %+v", kvOf(t, s, "w"), kvOf(t, s, "f"))
		}
	})
}

// A branch whose puts would take the data past the quota is refused whole,
// before it writes anything; deletes are never refused.
func TestTxnQuota(t *testing.T) {
	s := newTestStore(t)
	big := strings.Repeat("v", 50)
	quota := cost("a", []byte(big)) + cost("b", []byte(big)) + 10
	mustPut(t, s, "a", big, 1)
	s.takeEvents()
	before := s.be.meta

	cases := []struct {
		name string
		txn  messages.Txn
		want error
	}{
		{"two puts that fit alone, not together", messages.Txn{Success: []messages.TxnOp{txnPut("b", big), txnPut("c", "x")}}, ErrNoSpace},
		{"a delete of an absent key frees nothing", messages.Txn{Success: []messages.TxnOp{txnDel("z"), txnPut("b", big), txnPut("c", big)}}, ErrNoSpace},
		{"a value grown past the quota", messages.Txn{Success: []messages.TxnOp{txnPut("a", big+big+big)}}, ErrNoSpace},
		{"the failure branch is the one judged", messages.Txn{
			Compares: []messages.Compare{cmpNum("a", messages.CompareVersion, messages.CompareEqual, 7)},
			Success:  []messages.TxnOp{txnPut("x", "small")},
			Failure:  []messages.TxnOp{txnPut("b", big), txnPut("c", big)},
		}, ErrNoSpace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := s.applyTxn(c.txn, 9, quota, true)
			if !errors.Is(err, c.want) {
				t.Fatalf("applyTxn: %v, want %v", err, c.want)
			}
			if s.be.meta != before || len(s.takeEvents()) != 0 {
				t.Fatalf("a refused transaction changed the meta data %+v -> %+v or made events", before, s.be.meta)
			}
			if kv := kvOf(t, s, "b"); kv.ModRevision != 0 {
				t.Fatalf("a refused transaction wrote b: %+v", kv)
			}
		})
	}

	// The same branch fits under a larger quota; shrinking fits at the edge.
	if _, _, err := s.applyTxn(messages.Txn{Success: []messages.TxnOp{txnPut("b", big), txnPut("c", "")}}, 10, quota+cost("c", nil), true); err != nil {
		t.Fatalf("a branch within the quota: %v", err)
	}
	// Now over the (smaller) quota: a delete-only branch and a shrinking put
	// still pass.
	for i, txn := range []messages.Txn{
		{Success: []messages.TxnOp{txnDelRange("a", "b")}},
		{Success: []messages.TxnOp{txnPut("b", "short")}},
		{Success: []messages.TxnOp{txnDel("c"), txnDel("absent")}},
	} {
		if _, _, err := s.applyTxn(txn, uint64(11+i), cost("x", nil), true); err != nil {
			t.Fatalf("transaction %d that frees room, over the quota: %v", i, err)
		}
	}
	if s.be.meta.keys != 1 || s.revision() != 13 {
		t.Fatalf("keys %d revision %d, want b alone at 13", s.be.meta.keys, s.revision())
	}
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
		manyCompares[i] = cmpNum("k", messages.CompareVersion, messages.CompareEqual, 0)
	}
	refused := []struct {
		name string
		txn  messages.Txn
	}{
		{"too many compares", messages.Txn{Compares: manyCompares}},
		{"too many success ops", messages.Txn{Success: many(MaxTxnOps+1, txnGet("k"))}},
		{"too many failure ops", messages.Txn{Failure: many(MaxTxnOps+1, txnPut("", "v"))}},
		{"compare with no key", messages.Txn{Compares: []messages.Compare{cmpNum("", messages.CompareVersion, messages.CompareEqual, 0)}}},
		{"compare target 0", messages.Txn{Compares: []messages.Compare{{Key: "k", Op: messages.CompareEqual}}}},
		{"compare target 5", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: 5, Op: messages.CompareEqual}}}},
		{"compare op 0", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: messages.CompareVersion}}}},
		{"compare op 5", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: messages.CompareVersion, Op: 5}}}},
		{"op type 0", messages.Txn{Success: []messages.TxnOp{{Key: "k"}}}},
		{"op type 5", messages.Txn{Failure: []messages.TxnOp{{Type: 5, Key: "k"}}}},
		{"get with no key", messages.Txn{Success: []messages.TxnOp{txnGet("")}}},
		{"put with no key", messages.Txn{Success: []messages.TxnOp{txnPut("", "v")}}},
		{"delete with no key", messages.Txn{Success: []messages.TxnOp{txnDel("")}}},
		{"range with no start", messages.Txn{Success: []messages.TxnOp{txnRange(messages.Range{End: "z"})}}},
		{"range with neither start nor end", messages.Txn{Success: []messages.TxnOp{txnRange(messages.Range{})}}},
		{"delete range with no start", messages.Txn{Success: []messages.TxnOp{txnDelRange("", "z")}}},
		{"range at a revision", messages.Txn{Success: []messages.TxnOp{txnRange(messages.Range{Start: "a", End: "b", Revision: 3})}}},
		{"put twice", messages.Txn{Success: []messages.TxnOp{txnPut("k", "1"), txnPut("k", "2")}}},
		{"put then delete", messages.Txn{Success: []messages.TxnOp{txnPut("k", "1"), txnDel("k")}}},
		{"delete then put", messages.Txn{Failure: []messages.TxnOp{txnDel("k"), txnPut("k", "1")}}},
		{"delete twice", messages.Txn{Success: []messages.TxnOp{txnDel("k"), txnDel("k")}}},
		{"put inside a delete range", messages.Txn{Success: []messages.TxnOp{txnDelRange("a", "m"), txnPut("k", "1")}}},
		{"put before a delete range over it", messages.Txn{Success: []messages.TxnOp{txnPut("k", "1"), txnDelRange("a", "m")}}},
		{"put inside a delete of every key from a start", messages.Txn{Success: []messages.TxnOp{txnDelRange("a", rangeEndAll), txnPut("zz", "1")}}},
		{"delete inside a delete range", messages.Txn{Success: []messages.TxnOp{txnDel("k"), txnDelRange("k", "l")}}},
		{"put twice, between other ops", messages.Txn{Success: []messages.TxnOp{txnPut("k", "1"), txnGet("k"), txnPut("j", "2"), txnPut("k", "3")}}},
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
		{"limits", messages.Txn{Compares: manyCompares[:MaxTxnCompares], Success: many(MaxTxnOps, txnPut("", "v")), Failure: many(MaxTxnOps, txnGet("k"))}},
		{"one key written in each branch", messages.Txn{Success: []messages.TxnOp{txnPut("k", "1")}, Failure: []messages.TxnOp{txnDel("k")}}},
		{"reads of a written key", messages.Txn{Success: []messages.TxnOp{txnGet("k"), txnPut("k", "1"), txnGet("k"), txnRange(messages.Range{Start: "k"})}}},
		{"put beside a delete range", messages.Txn{Success: []messages.TxnOp{txnDelRange("a", "k"), txnPut("k", "1")}}},
		{"overlapping delete ranges", messages.Txn{Success: []messages.TxnOp{txnDelRange("a", "m"), txnDelRange("c", "z")}}},
		{"delete every key", messages.Txn{Success: []messages.TxnOp{txnDelRange("", rangeEndAll)}}},
		{"range of every key", messages.Txn{Success: []messages.TxnOp{txnRange(messages.Range{End: rangeEndAll})}}},
		{"binary keys", messages.Txn{Compares: []messages.Compare{cmpValue("\x00", messages.CompareEqual, "\xff")}, Success: []messages.TxnOp{txnPut("\x00\xff", "\x00")}}},
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
// and none are alike.
func sameTxn(a, b messages.Txn) bool {
	norm := func(t messages.Txn) messages.Txn {
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
				*ops.out = append(*ops.out, op)
			}
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

func codecTxns() []messages.Txn {
	return []messages.Txn{
		{},
		{Success: []messages.TxnOp{txnPut("k", "v")}},
		{
			Compares: []messages.Compare{
				cmpNum("lock", messages.CompareCreateRevision, messages.CompareEqual, 0),
				cmpValue("cfg", messages.CompareNotEqual, "old"),
				cmpNum("v", messages.CompareVersion, messages.CompareLess, 1<<63),
				cmpNum("m", messages.CompareModRevision, messages.CompareGreater, 300),
				cmpValue("\x00\xff", messages.CompareEqual, "\x00\x80\xff"),
				cmpValue("e", messages.CompareEqual, ""),
			},
			Success: []messages.TxnOp{
				txnPut("lock", "me"),
				txnGet("cfg"),
				txnPut("\xff\x00", "\x00\x00"),
				txnPut("empty", ""),
				txnDel("gone"),
				txnDelRange("p/", "p0"),
				txnDelRange("x", "y"),
				txnDelRange("\xff\x01", rangeEndAll),
				txnRange(messages.Range{Start: "a", End: "b", Limit: 7, KeysOnly: true}),
				txnRange(messages.Range{Start: "a", End: rangeEndAll, CountOnly: true}),
				txnRange(messages.Range{Start: "a", Limit: MaxRangeLimit, KeysOnly: true, CountOnly: true}),
				txnRange(messages.Range{End: rangeEndAll}),
			},
			Failure: []messages.TxnOp{txnGet("lock"), txnRange(messages.Range{Start: "\x00", End: "\xff"})},
		},
		{Failure: []messages.TxnOp{txnPut(strings.Repeat("k", 300), strings.Repeat("v", 70000))}},
	}
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
			data := command{op: opTxn, reqID: 77, value: b}.encode()
			c, err := decodeCommand(data)
			if err != nil || c.op != opTxn || c.reqID != 77 || !bytes.Equal(c.value, b) {
				t.Fatalf("decodeCommand = %+v, %v", brief(c), err)
			}
		})
	}
}

// A limit past MaxRangeLimit is what a range read clamps; a transaction
// that checkTxn accepts must decode, or every member that applies it stops.
func TestTxnRangeLimitDecodes(t *testing.T) {
	for _, limit := range []int{-5, 0, 1, MaxRangeLimit, MaxRangeLimit + 1, 1 << 40} {
		txn := messages.Txn{Success: []messages.TxnOp{txnRange(messages.Range{Start: "a", End: rangeEndAll, Limit: limit})}}
		if err := checkTxn(txn); err != nil {
			continue // refused before it is proposed: as good
		}
		got, err := decodeTxn(encodeTxn(txn))
		if err != nil {
			t.Fatalf("limit %d: checkTxn accepts the transaction, decodeTxn refuses it: %v", limit, err)
		}
		if l := got.Success[0].Range.Limit; limitOf(got.Success[0].Range) != limitOf(txn.Success[0].Range) {
			t.Fatalf("limit %d decodes as %d: a page of %d keys, want %d", limit, l, limitOf(got.Success[0].Range), limitOf(txn.Success[0].Range))
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
		{"a key written twice", encodeTxn(messages.Txn{Success: []messages.TxnOp{txnPut("k", "1"), txnPut("k", "2")}})},
		{"a put with no key", encodeTxn(messages.Txn{Failure: []messages.TxnOp{txnPut("", "1")}})},
		{"a field length past the end", []byte{1, byte(messages.CompareValue), byte(messages.CompareEqual), 9, 'k'}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeTxn(c.b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeTxn = %v, want ErrBadCommand", err)
			}
		})
	}

	// An opTxn command carries its keys in its value: one with a key is
	// malformed.
	data := command{op: opTxn, reqID: 1, key: "k", value: encodeTxn(messages.Txn{})}.encode()
	if _, err := decodeCommand(data); !errors.Is(err, ErrBadCommand) {
		t.Fatalf("decodeCommand of a transaction with a key = %v, want ErrBadCommand", err)
	}
}
