package apply

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

// leased is a transaction's put attached to lease.
func leased(key, value string, lease int64) messages.TxnOp {
	op := kvtest.TxnPut(key, value)
	op.Lease = lease
	return op
}

// leaseData is the native data of a lease operation proposed under reqID.
func leaseData(t testing.TB, reqID uint64, c Command, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	c.ReqID = reqID
	return c.encode()
}

func grantData(t testing.TB, reqID uint64, id, ttl int64) []byte {
	t.Helper()
	c, err := ProposeLeaseGrant(id, ttl)
	return leaseData(t, reqID, c, err)
}

func revokeData(t testing.TB, reqID uint64, id int64) []byte {
	t.Helper()
	c, err := ProposeLeaseRevoke(id)
	return leaseData(t, reqID, c, err)
}

func checkpointData(t testing.TB, reqID uint64, id, remaining int64) []byte {
	t.Helper()
	c, err := ProposeLeaseCheckpoint(id, remaining, 0)
	return leaseData(t, reqID, c, err)
}

// leasedPutData is the native data of a put attached to lease.
func leasedPutData(reqID uint64, key, value string, lease int64) []byte {
	return Command{Op: OpPut, ReqID: reqID, Key: key, Value: []byte(value), Lease: lease}.encode()
}

// Commands without leases are spelt as before leases, byte for byte: these
// are what the build before them wrote.
func TestEncodingsWithoutLeasesUnchanged(t *testing.T) {
	if got := hex.EncodeToString(Command{Op: OpPut, ReqID: 300, Key: "key", Value: []byte("value")}.encode()); got != "01ac02036b657976616c7565" {
		t.Fatalf("a put encodes as %s", got)
	}
	want := []string{
		"000000",
		"000103016b000176000000",
		"060301046c6f636b0000010203636667036f6c64000203017600808080808080808080010404016d00ac0201010200ff030080ff000101016500000c03046c6f636b00026d6500000103636667000000000302ff000002000000000305656d707479000000000404676f6e65000000000402702f02703000000004017801790000000402ff010100000000020161016200070102016101000000020201610000904e03020001000000000201046c6f636b0000000002010001ff000000",
		"sha a126d4de4d5c84804d88b9ad9bd86837618d943b62690815b960018dc00fc121",
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
}

// Lease commands round trip, and each has one encoding: decoding and
// encoding again gives the same bytes.
func TestLeaseCommandRoundTrip(t *testing.T) {
	mustCmd := func(c Command, err error) Command {
		if err != nil {
			t.Fatal(err)
		}
		c.ReqID = 77
		return c
	}
	for _, c := range []struct {
		name string
		cmd  Command
		op   byte // the op byte in the entry
		id   int64
		n    int64
		term uint64
	}{
		{name: "put with a lease", cmd: Command{Op: OpPut, ReqID: 5, Key: "k", Value: []byte("v"), Lease: 9}, op: byte(OpPutLease)},
		{name: "put with the largest lease", cmd: Command{Op: OpPut, ReqID: math.MaxUint64, Key: "\x00\xff", Value: []byte{0}, Lease: math.MaxInt64}, op: byte(OpPutLease)},
		{name: "put with a lease, empty value", cmd: Command{Op: OpPut, ReqID: 1, Key: "k", Lease: 1 << 40}, op: byte(OpPutLease)},
		{name: "put without a lease", cmd: Command{Op: OpPut, ReqID: 1, Key: "k", Value: []byte("v")}, op: byte(OpPut)},
		{name: "grant", cmd: mustCmd(ProposeLeaseGrant(1, 1)), op: byte(OpLeaseGrant), id: 1, n: 1},
		{name: "grant, largest", cmd: mustCmd(ProposeLeaseGrant(math.MaxInt64, messages.MaxLeaseTTL)), op: byte(OpLeaseGrant), id: math.MaxInt64, n: messages.MaxLeaseTTL},
		{name: "revoke", cmd: mustCmd(ProposeLeaseRevoke(300)), op: byte(OpLeaseRevoke), id: 300},
		{name: "expiry", cmd: mustCmd(ProposeLeaseExpiry(300, 12)), op: byte(OpLeaseRevoke), id: 300, term: 12},
		{name: "checkpoint", cmd: mustCmd(ProposeLeaseCheckpoint(7, 42, 3)), op: byte(OpLeaseCheckpoint), id: 7, n: 42, term: 3},
		{name: "checkpoint that clears", cmd: mustCmd(ProposeLeaseCheckpoint(7, 0, 1<<40)), op: byte(OpLeaseCheckpoint), id: 7, term: 1 << 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := c.cmd.encode()
			if data[0] != c.op {
				t.Fatalf("op byte %d, want %d", data[0], c.op)
			}
			got, err := decodeCommand(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got.Op != c.cmd.Op || got.ReqID != c.cmd.ReqID || got.Key != c.cmd.Key || got.Lease != c.cmd.Lease || !bytes.Equal(got.Value, c.cmd.Value) {
				t.Fatalf("decoded %+v, want %+v", got, c.cmd)
			}
			if again := got.encode(); !bytes.Equal(again, data) {
				t.Fatalf("re-encoding differs: %x, want %x", again, data)
			}
			if got.Op == OpLeaseGrant || got.Op == OpLeaseRevoke || got.Op == OpLeaseCheckpoint {
				id, n, term, err := decodeLeaseOp(got)
				if err != nil || id != c.id || n != c.n || term != c.term || got.Lease != c.id || got.Term != c.term {
					t.Fatalf("decodeLeaseOp = %d, %d, %d, %v (Lease %d, Term %d); want %d, %d, %d", id, n, term, err, got.Lease, got.Term, c.id, c.n, c.term)
				}
			}
			if err := ValidEntry(nativeFormat{}, data); err != nil {
				t.Fatalf("ValidEntry: %v", err)
			}
			if err := ValidEntry(nativeFormat{}, EncodeBatch(3, [][]byte{data, data}, 2*len(data))); err != nil {
				t.Fatalf("ValidEntry of a batch: %v", err)
			}
		})
	}
}

// A lease command that encode never writes does not decode: every member
// refuses it alike, and the raft actor turns away a peer's proposal of it.
func TestDecodeLeaseCommandMalformed(t *testing.T) {
	cmd := func(op Op, key string, value []byte) []byte {
		return Command{Op: op, ReqID: 1, Key: key, Value: value}.encode()
	}
	u := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	putLease := func(lease []byte, value string) []byte {
		return append(append(cmd(OpPutLease, "k", nil), lease...), value...)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"put with lease 0", putLease(u(0), "v")},
		{"put with a lease past int64", putLease(u(math.MaxInt64+1), "v")},
		{"put with a lease spelt long", putLease([]byte{0x81, 0x00}, "v")},
		{"put with a lease cut short", putLease([]byte{0x80}, "")},
		{"put with no lease", cmd(OpPutLease, "k", nil)},
		{"put with a lease and no key", append(append(cmd(OpPutLease, "", nil), u(1)...), 'v')},
		{"grant with a key", cmd(OpLeaseGrant, "k", u(1, 10))},
		{"grant of id 0", cmd(OpLeaseGrant, "", u(0, 10))},
		{"grant of an id past int64", cmd(OpLeaseGrant, "", u(math.MaxInt64+1, 10))},
		{"grant of TTL 0", cmd(OpLeaseGrant, "", u(1, 0))},
		{"grant past the largest TTL", cmd(OpLeaseGrant, "", u(1, messages.MaxLeaseTTL+1))},
		{"grant without TTL", cmd(OpLeaseGrant, "", u(1))},
		{"grant with trailing bytes", cmd(OpLeaseGrant, "", u(1, 10, 0))},
		{"grant with an id spelt long", cmd(OpLeaseGrant, "", append([]byte{0x81, 0x00}, u(10)...))},
		{"grant with a TTL spelt long", cmd(OpLeaseGrant, "", append(u(1), 0x8a, 0x00))},
		{"grant without a value", cmd(OpLeaseGrant, "", nil)},
		{"revoke with a key", cmd(OpLeaseRevoke, "k", u(1, 0))},
		{"revoke of id 0", cmd(OpLeaseRevoke, "", u(0, 0))},
		{"revoke without a term", cmd(OpLeaseRevoke, "", u(1))},
		{"revoke with trailing bytes", cmd(OpLeaseRevoke, "", u(1, 0, 0))},
		{"revoke without an id", cmd(OpLeaseRevoke, "", nil)},
		{"checkpoint without remaining", cmd(OpLeaseCheckpoint, "", u(1))},
		{"checkpoint without a term", cmd(OpLeaseCheckpoint, "", u(1, 2))},
		{"checkpoint past the largest TTL", cmd(OpLeaseCheckpoint, "", u(1, messages.MaxLeaseTTL+1, 0))},
		{"checkpoint with trailing bytes", cmd(OpLeaseCheckpoint, "", u(1, 2, 3, 4))},
		{"checkpoint of id 0", cmd(OpLeaseCheckpoint, "", u(0, 2, 0))},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeCommand(c.data)
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeCommand(%x) = %+v, %v; want ErrBadCommand", c.data, got, err)
			}
			if err := ValidEntry(nativeFormat{}, c.data); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("ValidEntry(%x) = %v, want ErrBadCommand", c.data, err)
			}
		})
	}
}

// A transaction's put with a lease sets flag 4 and carries the lease after
// the flags; only that spelling decodes.
func TestTxnLeaseEncoding(t *testing.T) {
	txn := messages.Txn{Success: []messages.TxnOp{leased("k", "v", 300)}, Failure: []messages.TxnOp{kvtest.TxnPut("j", "w")}}
	b := encodeTxn(txn)
	// compares 0 | 1 op | put | "k" | "" | "v" | limit 0 | flags 4 | 300 | 1 op | ...
	head := []byte{0, 1, byte(messages.OpPut), 1, 'k', 0, 1, 'v', 0, txnFlagLease, 0xac, 0x02, 1}
	if !bytes.HasPrefix(b, head) {
		t.Fatalf("encoding %x, want it to start %x", b, head)
	}
	flagsAt := len(head) - 4
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"lease 0 with the flag", append(append(bytes.Clone(b[:flagsAt+1]), 0), b[flagsAt+3:]...)},
		{"lease spelt long", append(append(bytes.Clone(b[:flagsAt+1]), 0xac, 0x82, 0x00), b[flagsAt+3:]...)},
		{"lease past int64", append(binary.AppendUvarint(bytes.Clone(b[:flagsAt+1]), math.MaxInt64+1), b[flagsAt+3:]...)},
		{"the flag on a get", encodeTxnFlagOn(t, messages.Txn{Success: []messages.TxnOp{kvtest.TxnGet("k")}})},
		{"the flag on a delete", encodeTxnFlagOn(t, messages.Txn{Success: []messages.TxnOp{kvtest.TxnDel("k")}})},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, err := decodeTxn(c.b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("decodeTxn(%x) = %+v, %v; want ErrBadCommand", c.b, got, err)
			}
		})
	}
}

// encodeTxnFlagOn encodes a transaction of one operation with the lease
// flag and a lease after it, as encodeTxn never writes for anything but a
// put.
func encodeTxnFlagOn(t *testing.T, txn messages.Txn) []byte {
	t.Helper()
	b := encodeTxn(txn)
	// The single operation's flags are its last byte before the failure
	// branch's count (0).
	if b[len(b)-1] != 0 || b[len(b)-2] != 0 {
		t.Fatalf("unexpected encoding %x", b)
	}
	out := append(bytes.Clone(b[:len(b)-2]), txnFlagLease, 1)
	return append(out, 0)
}

// Lease ids and TTLs are checked before anything is proposed; what passes
// decodes as proposed.
func TestProposeLeaseChecks(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"grant of id 0", second(ProposeLeaseGrant(0, 10)), messages.ErrBadRequest},
		{"grant of a negative id", second(ProposeLeaseGrant(-1, 10)), messages.ErrBadRequest},
		{"grant of TTL 0", second(ProposeLeaseGrant(1, 0)), messages.ErrBadRequest},
		{"grant of a negative TTL", second(ProposeLeaseGrant(1, -5)), messages.ErrBadRequest},
		{"grant past the largest TTL", second(ProposeLeaseGrant(1, messages.MaxLeaseTTL+1)), messages.ErrLeaseTTLTooLarge},
		{"revoke of id 0", second(ProposeLeaseRevoke(0)), messages.ErrLeaseNotFound},
		{"revoke of a negative id", second(ProposeLeaseRevoke(-3)), messages.ErrLeaseNotFound},
		{"checkpoint of id 0", second(ProposeLeaseCheckpoint(0, 1, 0)), messages.ErrBadRequest},
		{"negative checkpoint", second(ProposeLeaseCheckpoint(1, -1, 0)), messages.ErrBadRequest},
		{"checkpoint past the largest TTL", second(ProposeLeaseCheckpoint(1, messages.MaxLeaseTTL+1, 0)), messages.ErrLeaseTTLTooLarge},
		{"put with a negative lease", second(ProposePut("k", nil, -1)), messages.ErrLeaseNotFound},
		{"txn put with a negative lease", txnErr(messages.Txn{Success: []messages.TxnOp{leased("k", "v", -1)}}), messages.ErrLeaseNotFound},
		{"txn delete with a lease", txnErr(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpDelete, Key: "k", Lease: 1}}}), messages.ErrInvalidTxn},
		{"txn get with a lease", txnErr(messages.Txn{Failure: []messages.TxnOp{{Type: messages.OpGet, Key: "k", Lease: 1}}}), messages.ErrInvalidTxn},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	// A record with a lease is longer by its marker and its lease: its
	// value's limit is lower by as much (a value that large is not
	// allocated here).
	if k, v := putLimits(1); k != maxStoredKey-store.LeaseIndexOverhead || v != maxStoredValue-1-binary.MaxVarintLen64 {
		t.Errorf("limits of a put with a lease: key %d, value %d", k, v)
	}
	if k, v := putLimits(0); k != maxStoredKey || v != maxStoredValue {
		t.Errorf("limits of a put without a lease: key %d, value %d", k, v)
	}
	for _, c := range []struct {
		cmd     Command
		err     error
		op      Op
		lease   int64
		id, ttl int64
	}{
		{cmd: first(ProposePut("k", []byte("v"), 5)), op: OpPut, lease: 5},
		{cmd: first(ProposeLeaseGrant(1, messages.MaxLeaseTTL)), op: OpLeaseGrant, lease: 1, id: 1, ttl: messages.MaxLeaseTTL},
		{cmd: first(ProposeLeaseRevoke(math.MaxInt64)), op: OpLeaseRevoke, lease: math.MaxInt64, id: math.MaxInt64},
		{cmd: first(ProposeLeaseCheckpoint(2, 0, 0)), op: OpLeaseCheckpoint, lease: 2, id: 2},
	} {
		got, err := decodeCommand(c.cmd.encode())
		if err != nil || got.Op != c.op || got.Lease != c.lease {
			t.Errorf("%+v decodes as %+v, %v", c.cmd, got, err)
			continue
		}
		if c.op != OpPut {
			if id, n, _, err := decodeLeaseOp(got); err != nil || id != c.id || n != c.ttl {
				t.Errorf("%+v: lease %d, %d, %v", c.cmd, id, n, err)
			}
		}
	}
	c, _, _, err := ProposeTxn(messages.Txn{Success: []messages.TxnOp{leased("k", "v", 7)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeTxn(c.Value); err != nil || got.Success[0].Lease != 7 {
		t.Fatalf("a transaction's lease decodes as %+v, %v", got, err)
	}
}

func first(c Command, _ error) Command { return c }

// isLease says whether l is a grant's answer: lease id of ttl, all of it
// remaining.
func isLease(l *messages.Lease, id, ttl int64) bool {
	return l != nil && l.ID == id && l.TTL == ttl && l.Remaining == ttl && l.Keys == nil
}

// raftexample has no leases: its entries have no room for one.
func TestRaftexampleRefusesLeases(t *testing.T) {
	for _, c := range []struct {
		name string
		cmd  Command
	}{
		{"put with a lease", first(ProposePut("/k", []byte("v"), 3))},
		{"grant", first(ProposeLeaseGrant(3, 10))},
		{"revoke", first(ProposeLeaseRevoke(3))},
		{"checkpoint", first(ProposeLeaseCheckpoint(3, 5, 0))},
		{"transaction with a lease", Command{Op: OpTxn, Value: encodeTxn(messages.Txn{Success: []messages.TxnOp{leased("/k", "v", 3)}})}},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := raftexampleFormat{}.Encode(c.cmd)
			if !errors.Is(err, messages.ErrUnsupported) || data != nil {
				t.Fatalf("encode = %x, %v; want ErrUnsupported", data, err)
			}
		})
	}
}

// The applier answers a grant with the lease, a revocation with the
// store's revision after its deletes, and lists both for the lessor; a
// grant of an id held, a revocation or a put of a lease not held, and a
// transaction whose branch names one, are the client's failures: nothing
// is written, and nothing listed.
func TestApplierLeases(t *testing.T) {
	st := tmpStore(t)
	ap := newApplier(t, st, FormatNative, 0)
	var idx uint64
	step := func(data []byte, reqID uint64) (Outcome, Applied) {
		t.Helper()
		idx++
		res := applyEntry(t, ap, entryAt(idx, data))
		if len(res.Outcomes) != 1 || res.Outcomes[0].ReqID != reqID {
			t.Fatalf("entry %d answered %+v, want request %d", idx, res.Outcomes, reqID)
		}
		return res.Outcomes[0], res
	}

	o, res := step(grantData(t, 1, 10, 60), 1)
	if o.Err != nil || !isLease(o.Result.Lease, 10, 60) || o.Result.Index != 1 || o.Result.Revision != store.FirstRevision {
		t.Fatalf("grant answered %+v (%+v)", o, o.Result.Lease)
	}
	if !slices.Equal(res.Leases, []LeaseChange{{ID: 10, TTL: 60}}) {
		t.Fatalf("grant listed %+v", res.Leases)
	}
	if l, ok, _ := st.Lease(10); !ok || l.TTL != 60 || l.Granted != 1 {
		t.Fatalf("lease 10 in the store: %+v %v", l, ok)
	}
	o, res = step(grantData(t, 2, 10, 5), 2)
	if !errors.Is(o.Err, messages.ErrLeaseExists) || !errors.Is(o.Result.Err, messages.ErrLeaseExists) || res.Leases != nil {
		t.Fatalf("second grant answered %+v, listed %+v", o, res.Leases)
	}
	if l, _, _ := st.Lease(10); l.TTL != 60 {
		t.Fatalf("a failed grant changed the lease: %+v", l)
	}

	for i, k := range []string{"b", "a"} {
		if o, _ := step(leasedPutData(uint64(3+i), k, "v", 10), uint64(3+i)); o.Err != nil || o.Result.Revision != idx {
			t.Fatalf("leased put of %s answered %+v", k, o)
		}
	}
	if kv := getKV(t, st, "a"); kv.Lease != 10 {
		t.Fatalf("a = %+v, want lease 10", kv)
	}
	before := metaOf(st)
	o, _ = step(leasedPutData(5, "c", "v", 11), 5)
	if !errors.Is(o.Err, messages.ErrLeaseNotFound) || metaOf(st) != before {
		t.Fatalf("put with a missing lease answered %+v; store %+v -> %+v", o, before, metaOf(st))
	}
	o, _ = step(txnData(6, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("d", "1"), leased("e", "1", 11)}}), 6)
	if !errors.Is(o.Err, messages.ErrLeaseNotFound) || metaOf(st) != before {
		t.Fatalf("txn with a missing lease answered %+v; store %+v -> %+v", o, before, metaOf(st))
	}
	o, _ = step(txnData(7, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("d", "1"), leased("e", "1", 10), kvtest.TxnGet("a")}}), 7)
	if o.Err != nil || !o.Result.Succeeded || o.Result.Results[2].KVs[0].Lease != 10 {
		t.Fatalf("txn with a lease answered %+v", o)
	}
	if keys, _ := st.LeaseKeys(10); !slices.Equal(keys, []string{"a", "b", "e"}) {
		t.Fatalf("lease 10 holds %q", keys)
	}

	o, _ = step(checkpointData(t, 8, 10, 33), 8)
	if o.Err != nil {
		t.Fatalf("checkpoint answered %+v", o)
	}
	if l, _, _ := st.Lease(10); l.Remaining != 33 {
		t.Fatalf("after the checkpoint: %+v", l)
	}
	if o, res := step(checkpointData(t, 9, 99, 33), 9); o.Err != nil || res.Leases != nil {
		t.Fatalf("checkpoint of a lease not held answered %+v", o)
	}
	st.TakeEvents()

	o, res = step(revokeData(t, 10, 10), 10)
	if o.Err != nil || o.Result.Revision != idx || o.Result.Index != idx {
		t.Fatalf("revoke answered %+v, want revision %d", o, idx)
	}
	if !slices.Equal(res.Leases, []LeaseChange{{ID: 10, Revoked: true}}) {
		t.Fatalf("revoke listed %+v", res.Leases)
	}
	if evs := st.TakeEvents(); kvtest.EventNames(evs) != "[-a@10 -b@10 -e@10]" {
		t.Fatalf("revoke's events %s", kvtest.EventNames(evs))
	}
	if d := dataOf(t, st); len(d) != 1 || d["d"] != "1" {
		t.Fatalf("state after the revocation %q", d)
	}
	o, res = step(revokeData(t, 11, 10), 11)
	if !errors.Is(o.Err, messages.ErrLeaseNotFound) || res.Leases != nil {
		t.Fatalf("second revoke answered %+v, listed %+v", o, res.Leases)
	}

	// A batch lists its changes in order; a duplicate lists nothing.
	idx++
	res = applyEntry(t, ap, entryAt(idx, EncodeBatch(50, [][]byte{
		grantData(t, 12, 1, 5), grantData(t, 13, 2, 6), revokeData(t, 14, 1), grantData(t, 12, 3, 7),
	}, 0)))
	if want := []LeaseChange{{ID: 1, TTL: 5}, {ID: 2, TTL: 6}, {ID: 1, Revoked: true}}; !slices.Equal(res.Leases, want) {
		t.Fatalf("the batch listed %+v, want %+v", res.Leases, want)
	}
	if len(res.Outcomes) != 3 {
		t.Fatalf("the batch answered %+v: the duplicate request 12 is skipped", res.Outcomes)
	}
	if list, _ := st.Leases(); len(list) != 1 || list[0].ID != 2 {
		t.Fatalf("leases after the batch: %+v", list)
	}
	// An entry without lease operations lists none.
	idx++
	if res := applyEntry(t, ap, entryAt(idx, putData(20, "x", "1"))); res.Leases != nil {
		t.Fatalf("a put listed %+v", res.Leases)
	}
}

// The quota counts a put with a lease as one without.
func TestLeasedPutQuota(t *testing.T) {
	st := tmpStore(t)
	ap := newApplier(t, st, FormatNative, costOf("a", 10))
	if o := outcomeOf(t, ap, 1, grantData(t, 1, 1, 10), 1, waitAll); o.Err != nil {
		t.Fatal(o.Err)
	}
	if o := outcomeOf(t, ap, 2, leasedPutData(2, "a", filler(10), 1), 2, waitAll); o.Err != nil {
		t.Fatalf("a leased put within the quota: %v", o.Err)
	}
	if st.Used() != costOf("a", 10) {
		t.Fatalf("used %d, want %d", st.Used(), costOf("a", 10))
	}
	if o := outcomeOf(t, ap, 3, leasedPutData(3, "b", "", 1), 3, waitAll); !errors.Is(o.Err, ErrNoSpace) {
		t.Fatalf("a leased put past the quota: %v, want ErrNoSpace", o.Err)
	}
	if o := outcomeOf(t, ap, 4, txnData(4, messages.Txn{Success: []messages.TxnOp{leased("b", "", 1)}}), 4, waitAll); !errors.Is(o.Err, ErrNoSpace) {
		t.Fatalf("a transaction's leased put past the quota: %v, want ErrNoSpace", o.Err)
	}
	// Revoking frees the room, as a delete does.
	if o := outcomeOf(t, ap, 5, revokeData(t, 5, 1), 5, waitAll); o.Err != nil || st.Used() != 0 {
		t.Fatalf("revoke: %v, used %d", o.Err, st.Used())
	}
}

// A put with a lease whose key the lease index cannot hold is refused when
// applied; the same key without a lease is not.
func TestApplierRefusesLeasedKeyTooLong(t *testing.T) {
	st := tmpStore(t)
	ap := newApplier(t, st, FormatNative, 0)
	applyEntry(t, ap, entryAt(1, grantData(t, 0, 1, 10)))
	long := strings.Repeat("k", maxStoredLeasedKey+1)
	if o := outcomeOf(t, ap, 2, leasedPutData(2, long, "v", 1), 2, waitAll); !errors.Is(o.Err, messages.ErrEntryRefused) || !errors.Is(o.Err, messages.ErrKeyTooLarge) {
		t.Fatalf("a leased put of a %d-byte key: %v, want refused", len(long), o.Err)
	}
	if o := outcomeOf(t, ap, 3, txnData(3, messages.Txn{Success: []messages.TxnOp{leased(long, "v", 1)}}), 3, waitAll); !errors.Is(o.Err, messages.ErrEntryRefused) {
		t.Fatalf("a transaction's leased put of a %d-byte key: %v, want refused", len(long), o.Err)
	}
	if o := outcomeOf(t, ap, 4, leasedPutData(4, long[1:], "v", 1), 4, waitAll); o.Err != nil {
		t.Fatalf("a leased put of a %d-byte key: %v", len(long)-1, o.Err)
	}
	if o := outcomeOf(t, ap, 5, putData(5, long, "v"), 5, waitAll); o.Err != nil {
		t.Fatalf("a put of a %d-byte key without a lease: %v", len(long), o.Err)
	}
}

// Replay writes nothing, lists no lease changes, and answers a grant only
// when the lease the store holds is that entry's, a checkpoint always; a
// grant that failed or was revoked since, and a revocation, are not proven.
func TestApplierReplayLeases(t *testing.T) {
	st := tmpStore(t)
	ap := newApplier(t, st, FormatNative, 0)
	log := []*raftpb.Entry{
		entryAt(1, grantData(t, 1, 7, 30)),
		entryAt(2, grantData(t, 2, 7, 30)), // ErrLeaseExists
		entryAt(3, leasedPutData(3, "k", "v", 7)),
		entryAt(4, leasedPutData(4, "j", "v", 8)), // ErrLeaseNotFound
		entryAt(5, grantData(t, 5, 8, 40)),
		entryAt(6, revokeData(t, 6, 8)),
		entryAt(7, checkpointData(t, 7, 7, 12)),
		entryAt(8, revokeData(t, 8, 99)), // ErrLeaseNotFound
	}
	for _, e := range log {
		applyEntry(t, ap, e)
	}
	st.TakeEvents()
	before, was := metaOf(st), dataOf(t, st)
	answered := map[uint64]Outcome{}
	for _, e := range log {
		res, err := ap.Replay(e)
		if err != nil {
			t.Fatalf("replay %d: %v", e.GetIndex(), err)
		}
		if res.Leases != nil {
			t.Errorf("replay of %d listed %+v", e.GetIndex(), res.Leases)
		}
		for _, o := range res.Outcomes {
			answered[o.ReqID] = o
		}
	}
	if len(answered) != 3 {
		t.Errorf("answered %+v, want 1, 3 and 7", answered)
	}
	if o, ok := answered[1]; !ok || o.Err != nil || !isLease(o.Result.Lease, 7, 30) {
		t.Errorf("the grant replayed as %+v", o)
	}
	for _, id := range []uint64{3, 7} {
		if o, ok := answered[id]; !ok || o.Err != nil {
			t.Errorf("request %d replayed as %+v", id, o)
		}
	}
	if m := metaOf(st); m != before || len(dataOf(t, st)) != len(was) || len(st.TakeEvents()) != 0 {
		t.Errorf("replay changed the store: %+v -> %+v", before, m)
	}
	if l, _, _ := st.Lease(7); l.Remaining != 12 || l.Granted != 1 {
		t.Errorf("replay changed lease 7: %+v", l)
	}
}

// Two members applying one log with lease operations, failures and
// refusals included, end in one state: equal digests, equal leases.
func TestLeaseLogAppliesAlike(t *testing.T) {
	log := [][]byte{
		grantData(t, 1, 1, 10),
		grantData(t, 2, 2, 20),
		leasedPutData(3, "a", "1", 1),
		leasedPutData(4, "b", "1", 2),
		EncodeBatch(5, [][]byte{leasedPutData(6, "c", "1", 1), leasedPutData(7, "d", "1", 3), putData(8, "e", "1")}, 0),
		txnData(9, messages.Txn{Success: []messages.TxnOp{leased("f", "1", 2), leased("a", "2", 2)}}),
		checkpointData(t, 10, 2, 9),
		leasedPutData(11, "b", "2", 0),
		revokeData(t, 12, 1),
		grantData(t, 13, 1, 5),
		leasedPutData(14, strings.Repeat("x", maxStoredLeasedKey+1), "v", 1),
		{byte(OpLeaseGrant), 15, 0, 0},
		leasedPutData(16, "g", "1", 1),
	}
	var sums []string
	var leases [][]store.LeaseRecord
	for range 2 {
		st := tmpStore(t)
		ap := newApplier(t, st, FormatNative, 0)
		for i, data := range log {
			applyEntry(t, ap, entryAt(uint64(i+1), data))
		}
		sum, err := st.Digest()
		if err != nil {
			t.Fatal(err)
		}
		list, err := st.Leases()
		if err != nil {
			t.Fatal(err)
		}
		sums, leases = append(sums, sum), append(leases, list)
		if d := dataOf(t, st); len(d) != 5 { // a, b, e, f, g
			t.Errorf("state %q", d)
		}
	}
	if sums[0] != sums[1] || !slices.Equal(leases[0], leases[1]) {
		t.Fatalf("two stores applying one log differ: %v / %+v", sums, leases)
	}
}
