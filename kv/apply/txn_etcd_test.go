package apply

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// The etcd KV features of transactions: compares of a key's lease,
// previous keys of puts and deletes, puts that keep a key's value or
// lease, and nested transactions.

// A transaction that uses none of them is spelt as before them, byte for
// byte: the first five of codecTxns are what the build before them wrote
// (the first four are pinned by TestEncodingsWithoutLeasesUnchanged too).
func TestEncodingsWithoutNewFeaturesUnchanged(t *testing.T) {
	want := []string{
		"000000",
		"000103016b000176000000",
		"sha 58d7206487f516e7adef0672f42d7136c939be200e25831e3746656a9c1875aa",
		"sha a126d4de4d5c84804d88b9ad9bd86837618d943b62690815b960018dc00fc121",
		"0101010161013100040301610001320004070101610000000003016200000004ffffffffffffffff7f03016300086e6f206c65617365000002030161000133000480808080802004016200000000",
	}
	for i, txn := range codecTxns()[:len(want)] {
		b := encodeTxn(txn)
		got := hex.EncodeToString(b)
		if strings.HasPrefix(want[i], "sha ") {
			sum := sha256.Sum256(b)
			got = "sha " + hex.EncodeToString(sum[:])
		}
		if got != want[i] {
			t.Fatalf("transaction %d encodes as %s, want %s", i, got, want[i])
		}
	}
	// An operation's fields that mean nothing for its type set no new
	// flag: a get or a range asking for previous keys is refused before
	// it is proposed, but the encoding never spells it.
	b := encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpGet, Key: "k", PrevKV: true, IgnoreValue: true}}})
	if got := hex.EncodeToString(b); got != "000101016b0000000000" {
		t.Fatalf("a get encodes as %s", got)
	}
}

// oneOp is the encoding of a transaction whose success branch is op alone,
// with its flags byte replaced by flags (op has no lease, so the flags are
// the last byte but the failure branch's count).
func oneOp(op messages.TxnOp, flags byte) []byte {
	b := encodeTxn(messages.Txn{Success: []messages.TxnOp{op}})
	b[len(b)-2] = flags
	return b
}

// manyOps is n operations: gets of key "k", or puts of keys of their own.
func manyOps(n int, put bool) []messages.TxnOp {
	ops := make([]messages.TxnOp, n)
	for i := range ops {
		ops[i] = kvtest.TxnGet("k")
		if put {
			ops[i] = kvtest.TxnPut(fmt.Sprint("k", i), "v")
		}
	}
	return ops
}

func manyCompares(n int) []messages.Compare {
	cs := make([]messages.Compare, n)
	for i := range cs {
		cs[i] = kvtest.CmpNum("k", messages.CompareLease, messages.CompareEqual, 0)
	}
	return cs
}

// What the new features allow and refuse before anything is proposed (the
// kv actor's door, ProposeTxn), and when a committed entry holding them is
// applied (decodeTxn: the same checks, as ErrBadCommand).
func TestCheckTxnEtcdFeatures(t *testing.T) {
	nested := func(ops ...messages.TxnOp) messages.TxnOp { return nestedOp(messages.Txn{Success: ops}) }
	nestedElse := func(then, els []messages.TxnOp) messages.TxnOp {
		return nestedOp(messages.Txn{Success: then, Failure: els})
	}
	// unspelt marks what the encoding cannot spell (a flag it writes only
	// where it means something, a field of another operation type): such
	// an entry is refused when applied only if crafted
	// (TestDecodeTxnEtcdFeaturesMalformed).
	const unspelt = true
	refused := []struct {
		name    string
		txn     messages.Txn
		want    error
		unspelt bool
	}{
		{"prev_kv on a get", messages.Txn{Success: []messages.TxnOp{prevKV(kvtest.TxnGet("k"))}}, messages.ErrInvalidTxn, unspelt},
		{"prev_kv on a range", messages.Txn{Success: []messages.TxnOp{prevKV(kvtest.TxnRange(messages.Range{Start: "a"}))}}, messages.ErrInvalidTxn, unspelt},
		{"ignore_value on a delete", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpDelete, Key: "k", IgnoreValue: true}}}, messages.ErrInvalidTxn, unspelt},
		{"ignore_lease on a get", messages.Txn{Failure: []messages.TxnOp{{Type: messages.OpGet, Key: "k", IgnoreLease: true}}}, messages.ErrInvalidTxn, unspelt},
		{"ignore_value with a value", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "k", Value: []byte("v"), IgnoreValue: true}}}, messages.ErrInvalidTxn, false},
		{"ignore_lease with a lease", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "k", Lease: 5, IgnoreLease: true}}}, messages.ErrInvalidTxn, false},
		{"ignore_lease with a negative lease", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "k", Lease: -1, IgnoreLease: true}}}, messages.ErrLeaseNotFound, false},
		{"compare target 6", messages.Txn{Compares: []messages.Compare{{Key: "k", Target: 6, Op: messages.CompareEqual}}}, messages.ErrInvalidTxn, false},
		{"a transaction on a put", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "k", Txn: &messages.Txn{}}}}, messages.ErrInvalidTxn, unspelt},
		{"a nested transaction operation without one", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn}}}, messages.ErrInvalidTxn, false},
		{"a nested transaction with a key", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Key: "k", Txn: &messages.Txn{}}}}, messages.ErrInvalidTxn, false},
		{"a nested transaction with a value", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Value: []byte("v"), Txn: &messages.Txn{}}}}, messages.ErrInvalidTxn, unspelt},
		{"a nested transaction with a range", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Range: messages.Range{Limit: 3}, Txn: &messages.Txn{}}}}, messages.ErrInvalidTxn, false},
		{"a nested transaction with a lease", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Lease: 3, Txn: &messages.Txn{}}}}, messages.ErrInvalidTxn, unspelt},
		{"a nested transaction with prev_kv", messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, PrevKV: true, Txn: &messages.Txn{}}}}, messages.ErrInvalidTxn, unspelt},
		{"an invalid operation in a nested transaction", messages.Txn{Success: []messages.TxnOp{nested(kvtest.TxnPut("", "v"))}}, messages.ErrInvalidTxn, false},
		{"a key written twice in a nested branch", messages.Txn{Failure: []messages.TxnOp{nested(kvtest.TxnPut("k", "1"), kvtest.TxnDel("k"))}}, messages.ErrInvalidTxn, false},
		// etcd's checkIntervals: a write in the outer branch and one of
		// the same key in a nested branch write it twice.
		{"outer put, nested put", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nested(kvtest.TxnPut("k", "2"))}}, messages.ErrInvalidTxn, false},
		{"nested put, outer put after it", messages.Txn{Success: []messages.TxnOp{nested(kvtest.TxnPut("k", "2")), kvtest.TxnPut("k", "1")}}, messages.ErrInvalidTxn, false},
		{"outer put, nested failure branch's delete", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nestedElse(nil, []messages.TxnOp{kvtest.TxnDel("k")})}}, messages.ErrInvalidTxn, false},
		{"outer delete range, nested put in it", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", "z"), nested(kvtest.TxnPut("k", "1"))}}, messages.ErrInvalidTxn, false},
		{"nested delete range over an outer put", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nested(kvtest.TxnDelRange("a", store.RangeEndAll))}}, messages.ErrInvalidTxn, false},
		{"two nested transactions put one key", messages.Txn{Success: []messages.TxnOp{nested(kvtest.TxnPut("k", "1")), nestedElse(nil, []messages.TxnOp{kvtest.TxnPut("k", "2")})}}, messages.ErrInvalidTxn, false},
		{"two levels down", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nested(nested(nested(kvtest.TxnPut("k", "2"))))}}, messages.ErrInvalidTxn, false},
		{"nested deeper than the limit", messages.Txn{Success: []messages.TxnOp{deepTxn(MaxTxnDepth)}}, messages.ErrInvalidTxn, false},
		{"too many operations in all", messages.Txn{Success: manyOps(MaxTxnOps, false), Failure: []messages.TxnOp{nested(manyOps(MaxTxnOps, false)...)}}, messages.ErrInvalidTxn, false},
		{"too many operations in a nested branch", messages.Txn{Success: []messages.TxnOp{nested(manyOps(MaxTxnOps+1, false)...)}}, messages.ErrInvalidTxn, false},
		{"too many compares in all", messages.Txn{Compares: manyCompares(MaxTxnCompares), Success: []messages.TxnOp{nestedOp(messages.Txn{Compares: manyCompares(1)})}}, messages.ErrInvalidTxn, false},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if err := checkTxn(c.txn); !errors.Is(err, c.want) {
				t.Fatalf("checkTxn = %v, want %v", err, c.want)
			}
			if _, _, _, err := ProposeTxn(c.txn); !errors.Is(err, c.want) {
				t.Fatalf("ProposeTxn = %v, want %v", err, c.want)
			}
			// The same transaction in a committed entry is refused when
			// applied, alike on every member.
			if c.unspelt {
				return
			}
			if _, err := decodeTxn(encodeTxn(c.txn)); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeTxn = %v, want ErrBadCommand", err)
			}
		})
	}

	accepted := []struct {
		name string
		txn  messages.Txn
	}{
		{"prev_kv on a put and on deletes", messages.Txn{Success: []messages.TxnOp{prevKV(kvtest.TxnPut("a", "1")), prevKV(kvtest.TxnDel("b")), prevKV(kvtest.TxnDelRange("c", "d"))}}},
		{"ignore_value with a lease", messages.Txn{Success: []messages.TxnOp{keep(leased("k", "", 4), true, false)}}},
		{"ignore_lease with a value", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("k", "v"), false, true)}}},
		{"compare lease", messages.Txn{Compares: []messages.Compare{kvtest.CmpNum("k", messages.CompareLease, messages.CompareNotEqual, 0)}}},
		{"an empty nested transaction", messages.Txn{Success: []messages.TxnOp{nestedOp(messages.Txn{})}}},
		// The two branches of one nested transaction are alternatives.
		{"one key in both nested branches", messages.Txn{Success: []messages.TxnOp{nestedElse([]messages.TxnOp{kvtest.TxnPut("k", "1")}, []messages.TxnOp{kvtest.TxnDel("k")})}}},
		{"a nested put and a delete range over it in the other branch", messages.Txn{Success: []messages.TxnOp{nestedElse([]messages.TxnOp{kvtest.TxnPut("k", "1")}, []messages.TxnOp{kvtest.TxnDelRange("a", "z")})}}},
		{"one key in both outer branches, once nested", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1")}, Failure: []messages.TxnOp{nested(kvtest.TxnPut("k", "2"))}}},
		{"reads of a key written at another level", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nested(kvtest.TxnGet("k"), kvtest.TxnRange(messages.Range{Start: "k"}))}}},
		{"overlapping delete ranges across levels", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", "m"), nested(kvtest.TxnDelRange("c", "z"))}}},
		{"nested to the limit", messages.Txn{Success: []messages.TxnOp{deepTxn(MaxTxnDepth - 1)}}},
		{"operations to the limit in all", messages.Txn{Success: manyOps(MaxTxnOps-1, true), Failure: []messages.TxnOp{nested(manyOps(MaxTxnOps, false)...)}}},
		{"compares to the limit in all", messages.Txn{Compares: manyCompares(MaxTxnCompares - 1), Success: []messages.TxnOp{nestedOp(messages.Txn{Compares: manyCompares(1)})}}},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			if err := checkTxn(c.txn); err != nil {
				t.Fatalf("checkTxn = %v, want nil", err)
			}
			if _, err := decodeTxn(encodeTxn(c.txn)); err != nil {
				t.Fatalf("decodeTxn = %v, want nil", err)
			}
		})
	}
}

// Encodings no encoder writes are refused when applied: every member
// refuses them alike, and the raft actor turns away a peer's proposal of
// one.
func TestDecodeTxnEtcdFeaturesMalformed(t *testing.T) {
	tooDeep := deepTxn(MaxTxnDepth)
	// Past the compares' bound across levels: counts that the decoder
	// refuses before reading what they count.
	compares := encodeTxn(messages.Txn{Compares: manyCompares(MaxTxnCompares), Success: []messages.TxnOp{nestedOp(messages.Txn{})}})
	nestedCount := bytes.LastIndex(compares, []byte{byte(messages.OpTxn), 0, 0, 3, 0, 0, 0}) + 4
	compares[nestedCount] = 1
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"prev_kv flag on a get", oneOp(kvtest.TxnGet("k"), txnFlagPrevKV)},
		{"prev_kv flag on a range", oneOp(kvtest.TxnRange(messages.Range{Start: "a"}), txnFlagPrevKV)},
		{"ignore_value flag on a delete", oneOp(kvtest.TxnDel("k"), txnFlagIgnoreValue)},
		{"ignore_lease flag on a delete", oneOp(kvtest.TxnDel("k"), txnFlagPrevKV|txnFlagIgnoreLease)},
		{"lease flag on a delete", oneOp(kvtest.TxnDel("k"), txnFlagLease)},
		{"ignore_value flag with a value", oneOp(kvtest.TxnPut("k", "v"), txnFlagIgnoreValue)},
		{"a nested transaction with flags", oneOp(nestedOp(messages.Txn{}), txnFlagPrevKV)},
		{"a nested transaction with range flags", oneOp(nestedOp(messages.Txn{}), txnFlagKeysOnly)},
		{"a nested transaction with a limit", encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Range: messages.Range{Limit: 2}, Txn: &messages.Txn{}}}})},
		{"a nested transaction with a key", encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Key: "k", Txn: &messages.Txn{}}}})},
		{"a nested transaction with no body", encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn}}})},
		{"a nested transaction with trailing bytes", encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Value: []byte{0, 0, 0, 0}}}})},
		{"a nested transaction cut short", encodeTxn(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpTxn, Value: []byte{0, 1}}}})},
		{"nested deeper than the limit", encodeTxn(messages.Txn{Success: []messages.TxnOp{tooDeep}})},
		{"a key written twice across levels", encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nestedOp(messages.Txn{Failure: []messages.TxnOp{kvtest.TxnPut("k", "2")}})}})},
		{"compares past the bound across levels", compares},
		{"operations past the bound across levels", encodeTxn(messages.Txn{Success: manyOps(MaxTxnOps, false), Failure: []messages.TxnOp{nestedOp(messages.Txn{Success: manyOps(MaxTxnOps, false)})}})},
		{"compare target 6", encodeTxn(messages.Txn{Compares: []messages.Compare{{Key: "k", Target: 6, Op: messages.CompareEqual}}})},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := decodeTxn(c.b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeTxn(%x) = %v, want ErrBadCommand", c.b, err)
			}
			data := Command{Op: OpTxn, ReqID: 1, Value: c.b}.encode()
			if err := ValidEntry(nativeFormat{}, data); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("ValidEntry = %v, want ErrBadCommand", err)
			}
		})
	}
	// The bits 64 and 128, and a range's bits on another operation, were
	// ignored before these features, and still are: an entry holding
	// them, which no encoder wrote, applies as it did.
	for _, flags := range []byte{64, 128, txnFlagKeysOnly | txnFlagCountOnly} {
		got, err := decodeTxn(oneOp(kvtest.TxnPut("k", "v"), flags))
		if err != nil || !sameTxn(got, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "v")}}) {
			t.Fatalf("a put with flags %#x decodes as %+v, %v; want the put", flags, got, err)
		}
	}
}

// The batcher hears of every key a transaction may write, nested ones'
// too: no two writes of one key share an entry.
func TestProposeTxnNestedKeys(t *testing.T) {
	txn := messages.Txn{
		Success: []messages.TxnOp{kvtest.TxnPut("a", "1"), nestedOp(messages.Txn{
			Success: []messages.TxnOp{kvtest.TxnPut("b", "1"), kvtest.TxnGet("g")},
			Failure: []messages.TxnOp{kvtest.TxnDel("c"), nestedOp(messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("d", ""), true, false)}})},
		})},
	}
	c, keys, all, err := ProposeTxn(txn)
	if err != nil || fmt.Sprint(keys) != "[a b c d]" || all {
		t.Fatalf("ProposeTxn = %q, %v, %v; want keys [a b c d], not all", keys, all, err)
	}
	if got, err := decodeTxn(c.Value); err != nil || !sameTxn(got, txn) {
		t.Fatalf("the proposed value decodes as %+v, %v", got, err)
	}
	txn.Success = append(txn.Success, nestedOp(messages.Txn{Failure: []messages.TxnOp{kvtest.TxnDelRange("p/", "p0")}}))
	if _, keys, all, err := ProposeTxn(txn); err != nil || fmt.Sprint(keys) != "[a b c d]" || !all {
		t.Fatalf("with a nested delete range: %q, %v, %v; want all", keys, all, err)
	}
	// The API's key limit holds in nested transactions as elsewhere.
	huge := strings.Repeat("k", messages.MaxKeyBytes+1)
	for _, op := range []messages.TxnOp{kvtest.TxnGet(huge), kvtest.TxnPut(huge, "v")} {
		if _, _, _, err := ProposeTxn(messages.Txn{Failure: []messages.TxnOp{nestedOp(messages.Txn{Success: []messages.TxnOp{op}})}}); !errors.Is(err, messages.ErrKeyTooLarge) {
			t.Fatalf("a nested key over the limit: %v, want ErrKeyTooLarge", err)
		}
	}
	tooLong := make([]byte, maxStoredValue+1)
	if _, _, _, err := ProposeTxn(messages.Txn{Success: []messages.TxnOp{nestedOp(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "k", Value: tooLong}}})}}); !errors.Is(err, messages.ErrValueTooLarge) {
		t.Fatalf("a nested value the db cannot hold: %v, want ErrValueTooLarge", err)
	}
	// A put that keeps a key's lease may keep one: its value is held to
	// the limit of a key with a lease.
	if _, _, _, err := ProposeTxn(messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("k", string(make([]byte, maxStoredLeasedValue+1))), false, true)}}); !errors.Is(err, messages.ErrValueTooLarge) {
		t.Fatalf("a put keeping the lease with a value past a leased key's limit: %v, want ErrValueTooLarge", err)
	}
}

// leaseStore is a store with leases 7 and 8 granted, k attached to 7
// (revision 2) and n attached to none (revision 3).
func leaseStore(t *testing.T) *store.Store {
	t.Helper()
	st := tmpStore(t)
	for _, id := range []int64{7, 8} {
		if err := st.GrantLease(id, 60); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Put("k", []byte("v"), 2, 7); err != nil {
		t.Fatal(err)
	}
	putAt(t, st, "n", "w", 3)
	return st
}

// CompareLease compares a key's lease id; an absent key's is 0, as its
// counters are.
func TestTxnCompareLease(t *testing.T) {
	st := leaseStore(t)
	r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}
	rows := []struct {
		key    string
		number uint64
		want   string // =, !=, <, >
	}{
		{"k", 7, "TFFF"},
		{"k", 6, "FTFT"},
		{"k", 8, "FTTF"},
		{"n", 0, "TFFF"},
		{"n", 7, "FTTF"},
		{"absent", 0, "TFFF"},
		{"absent", 7, "FTTF"},
	}
	rev := uint64(10)
	for _, row := range rows {
		for i, op := range allOps {
			c := kvtest.CmpNum(row.key, messages.CompareLease, op, row.number)
			name := fmt.Sprintf("%s lease %s %d", row.key, opNames[op], row.number)
			want := row.want[i] == 'T'
			if got, err := st.Decide(messages.Txn{Compares: []messages.Compare{c}}); err != nil || got != want {
				t.Errorf("%s: Decide = %v, %v; want %v", name, got, err, want)
			}
			rev++
			ok, _, err := r.run(t, messages.Txn{Compares: []messages.Compare{c}, Success: []messages.TxnOp{kvtest.TxnPut("branch", "s")}}, rev, waitAll)
			if err != nil || ok != want {
				t.Errorf("%s: applied = %v, %v; want %v", name, ok, err, want)
			}
		}
	}
}

// A put or delete with PrevKV returns the keys as they were just before
// it: a put's previous record (none for a new key), every key a delete
// removed, in key order, with values. Only where a client waits.
func TestTxnPrevKV(t *testing.T) {
	st := tmpStore(t)
	putAt(t, st, "a", "1", 1)
	if err := st.GrantLease(5, 60); err != nil {
		t.Fatal(err)
	}
	if err := st.Put("b", []byte("2"), 2, 5); err != nil {
		t.Fatal(err)
	}
	putAt(t, st, "c", "3", 3)
	putAt(t, st, "c1", "31", 3)
	putAt(t, st, "c2", "32", 4)
	putAt(t, st, "d", "4", 4)
	r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}
	txn := messages.Txn{Success: []messages.TxnOp{
		prevKV(kvtest.TxnPut("a", "10")),
		prevKV(kvtest.TxnPut("new", "n")),
		kvtest.TxnPut("d", "40"),
		prevKV(kvtest.TxnDel("b")),
		prevKV(kvtest.TxnDelRange("c", "d")),
		prevKV(kvtest.TxnDel("absent")),
		prevKV(kvtest.TxnDelRange("x", "z")),
		kvtest.TxnGet("a"),
	}}
	ok, res, err := r.run(t, txn, 5, waitAll)
	if err != nil || !ok {
		t.Fatalf("apply = %v, %v", ok, err)
	}
	want := []messages.OpResult{
		{PrevKVs: []messages.KV{{Key: "a", Value: []byte("1"), CreateRevision: 1, ModRevision: 1, Version: 1}}},
		{},
		{},
		{Deleted: 1, PrevKVs: []messages.KV{{Key: "b", Value: []byte("2"), CreateRevision: 2, ModRevision: 2, Version: 1, Lease: 5}}},
		{Deleted: 3, PrevKVs: []messages.KV{
			{Key: "c", Value: []byte("3"), CreateRevision: 3, ModRevision: 3, Version: 1},
			{Key: "c1", Value: []byte("31"), CreateRevision: 3, ModRevision: 3, Version: 1},
			{Key: "c2", Value: []byte("32"), CreateRevision: 4, ModRevision: 4, Version: 1},
		}},
		{},
		{},
		{KVs: []messages.KV{{Key: "a", Value: []byte("10"), CreateRevision: 1, ModRevision: 5, Version: 2}}, Count: 1},
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("results\n%+v\nwant\n%+v", res, want)
	}
	if got := dataOf(t, st); fmt.Sprint(got) != "map[a:10 d:40 new:n]" {
		t.Fatalf("state %v", got)
	}

	// Where no client waits the writes are made alike and nothing is read.
	other := tmpStore(t)
	putAt(t, other, "a", "1", 1)
	r = &txnRunner{ap: newApplier(t, other, FormatNative, 0)}
	ok, res, err = r.run(t, messages.Txn{Success: []messages.TxnOp{prevKV(kvtest.TxnPut("b", "2")), prevKV(kvtest.TxnDel("a"))}}, 2, waitNone)
	if err != nil || !ok || res != nil || fmt.Sprint(dataOf(t, other)) != "map[b:2]" {
		t.Fatalf("without results: %v %+v %v, state %v", ok, res, err, dataOf(t, other))
	}
}

// A put with IgnoreValue or IgnoreLease keeps the key's value or lease; on
// an absent key it fails the whole transaction with ErrNotFound before
// anything is written, wherever it is on the path that runs.
func TestTxnIgnoreValueAndLease(t *testing.T) {
	type want struct {
		err   error
		value string
		lease int64
	}
	for _, c := range []struct {
		name string
		txn  messages.Txn
		key  string // the key to look at after
		want want
	}{
		{"keep the value, detach", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("k", ""), true, false)}}, "k", want{value: "v"}},
		{"keep the value, another lease", messages.Txn{Success: []messages.TxnOp{keep(leased("k", "", 8), true, false)}}, "k", want{value: "v", lease: 8}},
		{"keep the lease, a new value", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("k", "new"), false, true)}}, "k", want{value: "new", lease: 7}},
		{"keep both", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("k", ""), true, true)}}, "k", want{value: "v", lease: 7}},
		{"keep the lease of a key without one", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("n", "x"), false, true)}}, "n", want{value: "x"}},
		{"keep the value of an absent key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("other", "1"), keep(kvtest.TxnPut("absent", ""), true, false)}}, "other", want{err: messages.ErrNotFound}},
		{"keep the lease of an absent key", messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("k"), keep(kvtest.TxnPut("absent", "x"), false, true)}}, "k", want{err: messages.ErrNotFound, value: "v", lease: 7}},
		{"absent key in a nested transaction that runs", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("other", "1"), nestedOp(messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("absent", ""), true, false)}})}}, "other", want{err: messages.ErrNotFound}},
		{"absent key in a branch that does not run", messages.Txn{
			Success: []messages.TxnOp{kvtest.TxnPut("other", "1"), nestedOp(messages.Txn{Failure: []messages.TxnOp{keep(kvtest.TxnPut("absent", ""), true, false)}})},
			Failure: []messages.TxnOp{keep(kvtest.TxnPut("absent", ""), true, true)},
		}, "other", want{value: "1"}},
		{"missing lease in a nested transaction that runs", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("other", "1"), nestedOp(messages.Txn{Success: []messages.TxnOp{leased("x", "1", 99)}})}}, "other", want{err: messages.ErrLeaseNotFound}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := leaseStore(t)
			st.TakeEvents()
			before := metaOf(st)
			r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}
			_, _, err := r.run(t, c.txn, 10, waitAll)
			if !errors.Is(err, c.want.err) || (c.want.err == nil) != (err == nil) {
				t.Fatalf("apply: %v, want %v", err, c.want.err)
			}
			kv, found, gerr := st.Get(c.key)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if c.want.err != nil {
				// Nothing written: no revision, no event, no key.
				if metaOf(st) != before || len(st.TakeEvents()) != 0 || (c.want.value == "" && found) {
					t.Fatalf("a failed transaction wrote: %+v (was %+v), %s found %v", metaOf(st), before, c.key, found)
				}
				if c.want.value == "" {
					return
				}
			}
			if !found || string(kv.Value) != c.want.value || kv.Lease != c.want.lease {
				t.Fatalf("%s = %+v (found %v), want value %q lease %d", c.key, kv, found, c.want.value, c.want.lease)
			}
			if c.want.err == nil && (kv.ModRevision != 10 || st.Revision() != 10) {
				t.Fatalf("%s = %+v at store revision %d, want written at 10", c.key, kv, st.Revision())
			}
		})
	}
	// A kept value is the key's own, counted as before: its version and
	// create revision follow, and the previous record is what prev_kv
	// returns.
	st := leaseStore(t)
	r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}
	_, res, err := r.run(t, messages.Txn{Success: []messages.TxnOp{prevKV(keep(kvtest.TxnPut("k", ""), true, true)), kvtest.TxnGet("k")}}, 11, waitAll)
	if err != nil {
		t.Fatal(err)
	}
	if p := res[0].PrevKVs; len(p) != 1 || string(p[0].Value) != "v" || p[0].ModRevision != 2 || p[0].Lease != 7 {
		t.Fatalf("prev %+v", p)
	}
	if kv := res[1].KVs[0]; string(kv.Value) != "v" || kv.Lease != 7 || kv.CreateRevision != 2 || kv.ModRevision != 11 || kv.Version != 2 {
		t.Fatalf("k after a put keeping both: %+v", kv)
	}
}

// Nested transactions run at the outer one's revision; their compares are
// decided against the state before the outer transaction, as etcd decides
// them up front, while their reads see the writes made before them. Each
// answers whether it succeeded and the results of the branch that ran.
func TestTxnNested(t *testing.T) {
	st := tmpStore(t)
	putAt(t, st, "a", "1", 1)
	putAt(t, st, "b", "1", 2)
	st.TakeEvents()
	r := &txnRunner{ap: newApplier(t, st, FormatNative, 0)}
	txn := messages.Txn{
		Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")},
		Success: []messages.TxnOp{
			kvtest.TxnPut("a", "2"),
			// a is "2" by now, but the compare reads the state before
			// the transaction.
			nestedOp(messages.Txn{
				Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")},
				Success:  []messages.TxnOp{kvtest.TxnGet("a"), prevKV(kvtest.TxnPut("c", "3"))},
				Failure:  []messages.TxnOp{kvtest.TxnPut("c", "no")},
			}),
			nestedOp(messages.Txn{
				Compares: []messages.Compare{kvtest.CmpNum("b", messages.CompareVersion, messages.CompareEqual, 5)},
				Success:  []messages.TxnOp{kvtest.TxnPut("d", "no")},
				Failure: []messages.TxnOp{
					prevKV(kvtest.TxnDel("b")),
					// c is absent before the transaction: this compare
					// holds although the nested transaction above wrote c.
					nestedOp(messages.Txn{
						Compares: []messages.Compare{kvtest.CmpNum("c", messages.CompareCreateRevision, messages.CompareEqual, 0)},
						Success:  []messages.TxnOp{kvtest.TxnGet("c")},
					}),
				},
			}),
			kvtest.TxnGet("d"),
		},
		Failure: []messages.TxnOp{nestedOp(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("e", "no")}})},
	}
	ok, res, err := r.run(t, txn, 10, waitAll)
	if err != nil || !ok {
		t.Fatalf("apply = %v, %v", ok, err)
	}
	want := []messages.OpResult{
		{},
		{Succeeded: true, Results: []messages.OpResult{
			{KVs: []messages.KV{{Key: "a", Value: []byte("2"), CreateRevision: 1, ModRevision: 10, Version: 2}}, Count: 1},
			{},
		}},
		{Succeeded: false, Results: []messages.OpResult{
			{Deleted: 1, PrevKVs: []messages.KV{{Key: "b", Value: []byte("1"), CreateRevision: 2, ModRevision: 2, Version: 1}}},
			{Succeeded: true, Results: []messages.OpResult{
				{KVs: []messages.KV{{Key: "c", Value: []byte("3"), CreateRevision: 10, ModRevision: 10, Version: 1}}, Count: 1},
			}},
		}},
		{},
	}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("results\n%+v\nwant\n%+v", res, want)
	}
	if got := kvtest.EventNames(st.TakeEvents()); got != "[a@10 c@10 -b@10]" {
		t.Fatalf("events %s, want every write at 10", got)
	}
	if st.Revision() != 10 || fmt.Sprint(dataOf(t, st)) != "map[a:2 c:3]" {
		t.Fatalf("revision %d, state %v", st.Revision(), dataOf(t, st))
	}

	// The failure branch's nested transaction, on a member where no
	// client waits: written alike, nothing read.
	ok, res, err = r.run(t, txn, 11, waitNone) // a is 2: the outer compare fails
	if err != nil || ok || res != nil || fmt.Sprint(dataOf(t, st)) != "map[a:2 c:3 e:no]" || getKV(t, st, "e").ModRevision != 11 {
		t.Fatalf("failure branch: %v %+v %v, state %v", ok, res, err, dataOf(t, st))
	}
	// And with results: the shape of the failure branch.
	ok, res, err = r.run(t, messages.Txn{Failure: []messages.TxnOp{nestedOp(messages.Txn{Failure: []messages.TxnOp{kvtest.TxnGet("e")}, Compares: []messages.Compare{kvtest.CmpValue("absent", messages.CompareEqual, "")}})}, Compares: []messages.Compare{kvtest.CmpValue("absent", messages.CompareNotEqual, "")}}, 12, waitAll)
	if err != nil || ok || len(res) != 1 || res[0].Succeeded || len(res[0].Results) != 1 || string(res[0].Results[0].KVs[0].Value) != "no" {
		t.Fatalf("failure branches: %v %+v %v", ok, res, err)
	}
}

// Entries holding what the door refuses are refused when applied, with
// ErrEntryRefused, and write nothing, alike on every member.
func TestTxnEtcdFeaturesRefusedWhenApplied(t *testing.T) {
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"nested too deep", encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("x", "1"), deepTxn(MaxTxnDepth)}})},
		{"a key written twice across levels", encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), nestedOp(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "2")}})}})},
		{"ignore_value with a value", encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("x", "1"), {Type: messages.OpPut, Key: "k", Value: []byte("v"), IgnoreValue: true}}})},
		{"prev_kv on a get", oneOp(kvtest.TxnGet("k"), txnFlagPrevKV)},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := leaseStore(t)
			before := metaOf(st)
			ap := newApplier(t, st, FormatNative, 0)
			o := outcomeOf(t, ap, 10, Command{Op: OpTxn, ReqID: 3, Value: c.body}.encode(), 3, waitAll)
			if !errors.Is(o.Err, messages.ErrEntryRefused) || !errors.Is(o.Err, ErrBadCommand) {
				t.Fatalf("answer %v, want ErrEntryRefused", o.Err)
			}
			if metaOf(st) != before {
				t.Fatalf("a refused entry wrote: %+v, was %+v", metaOf(st), before)
			}
			if idx, _ := st.Applied(); idx != 10 {
				t.Fatalf("applied index %d, want 10", idx)
			}
		})
	}
}

// The quota weighs the puts that run, nested ones included; a put that
// keeps the key's value grows nothing, and passes at the quota.
func TestTxnQuotaEtcdFeatures(t *testing.T) {
	st := tmpStore(t)
	quota := costOf("a", 100) + costOf("b", 10)
	ap := newApplier(t, st, FormatNative, quota)
	r := &txnRunner{ap: ap}
	if _, _, err := r.run(t, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", filler(100)), kvtest.TxnPut("b", filler(10))}}, 1, waitAll); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		txn  messages.Txn
		want error
	}{
		{"keep a value at the quota", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("a", ""), true, false)}}, nil},
		{"keep a value, nested", messages.Txn{Success: []messages.TxnOp{nestedOp(messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("a", ""), true, true)}})}}, nil},
		{"grow past the quota, nested", messages.Txn{Success: []messages.TxnOp{nestedOp(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("c", "")}})}}, ErrNoSpace},
		{"grow past the quota in the nested branch that runs", messages.Txn{Success: []messages.TxnOp{nestedOp(messages.Txn{
			Compares: []messages.Compare{kvtest.CmpValue("b", messages.CompareEqual, "x")},
			Success:  []messages.TxnOp{kvtest.TxnPut("a", "")},
			Failure:  []messages.TxnOp{kvtest.TxnPut("b", filler(11))},
		})}}, ErrNoSpace},
		{"shrink in the nested branch that runs", messages.Txn{Success: []messages.TxnOp{nestedOp(messages.Txn{
			Compares: []messages.Compare{kvtest.CmpValue("b", messages.CompareEqual, "x")},
			Success:  []messages.TxnOp{kvtest.TxnPut("b", filler(11))},
			Failure:  []messages.TxnOp{kvtest.TxnPut("a", filler(99))},
		})}}, nil},
		{"keep a value of an absent key", messages.Txn{Success: []messages.TxnOp{keep(kvtest.TxnPut("z", ""), true, false)}}, messages.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := metaOf(st)
			_, _, err := r.run(t, c.txn, 2, waitAll)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("apply: %v, want %v", err, c.want)
			}
			if c.want != nil && metaOf(st) != before {
				t.Fatalf("a refused transaction wrote: %+v, was %+v", metaOf(st), before)
			}
		})
	}
}

// Whatever bytes a transaction's value holds, decodeTxn refuses them with
// ErrBadCommand or returns a transaction checkTxn accepts, which encodes
// to bytes that decode alike.
func FuzzDecodeTxn(f *testing.F) {
	for _, txn := range codecTxns() {
		f.Add(encodeTxn(txn))
	}
	f.Add(oneOp(kvtest.TxnGet("k"), txnFlagPrevKV))
	f.Add(binary.AppendUvarint(nil, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		txn, err := decodeTxn(b)
		if !bytes.Equal(b, orig) {
			t.Fatalf("decodeTxn modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		// What decodes is what checkTxn accepts, and encodes to a
		// transaction that decodes alike.
		if err := checkTxn(txn); err != nil {
			t.Fatalf("decoded a transaction checkTxn refuses: %v", err)
		}
		again, err := decodeTxn(encodeTxn(txn))
		if err != nil || !sameTxn(again, txn) {
			t.Fatalf("re-encoded %+v decodes as %+v, %v", txn, again, err)
		}
	})
}
