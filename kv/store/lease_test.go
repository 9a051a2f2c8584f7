package store

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

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/messages"
)

func mustGrant(t testing.TB, s *Store, id, ttl int64) {
	t.Helper()
	if err := s.GrantLease(id, ttl); err != nil {
		t.Fatalf("grant lease %d: %v", id, err)
	}
}

func mustPutLease(t testing.TB, s *Store, key, value string, rev uint64, lease int64) {
	t.Helper()
	if err := s.Put(key, []byte(value), rev, lease); err != nil {
		t.Fatalf("put %q at %d with lease %d: %v", key, rev, lease, err)
	}
}

func leaseKeysOf(t testing.TB, s *Store, id int64) []string {
	t.Helper()
	keys, err := s.LeaseKeys(id)
	if err != nil {
		t.Fatalf("LeaseKeys(%d): %v", id, err)
	}
	return keys
}

// checkLeaseIndex checks that the lease index holds exactly the
// attachments the records say, and names only leases the state holds.
func checkLeaseIndex(t testing.TB, s *Store) {
	t.Helper()
	tx := s.be.Tx()
	want := map[string]bool{}
	err := tx.Bucket(bucketKV).ForEach(func(k, v []byte) error {
		r, err := decodeRecord(v)
		if err != nil {
			return err
		}
		if r.lease != 0 {
			want[string(leaseIndexKey(r.lease, string(k)))] = true
			if tx.Bucket(bucketLeases).Get(leaseKey(r.lease)) == nil {
				t.Errorf("key %q is attached to lease %d, which the state does not hold", k, r.lease)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	_ = tx.Bucket(bucketLeaseKeys).ForEach(func(k, v []byte) error {
		got[string(k)] = true
		if len(v) != 0 {
			t.Errorf("index entry %x has a value", k)
		}
		return nil
	})
	if len(got) != len(want) {
		t.Fatalf("the lease index holds %d entries, the records %d attachments", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Fatalf("the lease index lacks %x", k)
		}
	}
}

// Records without a lease keep the plain form of every earlier layout, byte
// for byte; records with one (or made at revision 0) the extended form,
// which starts with 0; both decode to what was encoded.
func TestRecordEncoding(t *testing.T) {
	plain := func(create, mod, version uint64, value string) []byte {
		b := binary.AppendUvarint(nil, create)
		b = binary.AppendUvarint(b, mod)
		b = binary.AppendUvarint(b, version)
		return append(b, value...)
	}
	for _, c := range []struct {
		name string
		r    record
		want []byte // nil: the extended form, checked by its round trip
	}{
		{name: "no lease", r: record{createRev: 5, modRev: 9, version: 3, value: []byte("v")}, want: plain(5, 9, 3, "v")},
		{name: "no lease, empty value", r: record{createRev: 1, modRev: 1, version: 1}, want: plain(1, 1, 1, "")},
		{name: "no lease, large revisions", r: record{createRev: 1 << 40, modRev: math.MaxUint64, version: 300, value: []byte{0, 0xff}}, want: plain(1<<40, math.MaxUint64, 300, "\x00\xff")},
		{name: "lease", r: record{createRev: 5, modRev: 9, version: 3, lease: 7, value: []byte("v")}},
		{name: "lease, value starting with 0", r: record{createRev: 5, modRev: 5, version: 1, lease: 1, value: []byte{0, 0}}},
		{name: "largest lease", r: record{createRev: 1, modRev: 2, version: 2, lease: math.MaxInt64, value: []byte("v")}},
		{name: "created at revision 0", r: record{modRev: 3, version: 2, value: []byte("v")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.r.encode()
			if len(b) != c.r.size() {
				t.Fatalf("size %d, encoding of %d bytes", c.r.size(), len(b))
			}
			if c.want != nil && !bytes.Equal(b, c.want) {
				t.Fatalf("encoding %x, want the plain form %x", b, c.want)
			}
			if c.want == nil && b[0] != 0 {
				t.Fatalf("encoding %x: the extended form starts with 0", b)
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.createRev != c.r.createRev || got.modRev != c.r.modRev || got.version != c.r.version || got.lease != c.r.lease || !bytes.Equal(got.value, c.r.value) {
				t.Fatalf("decoded %+v, want %+v", got, c.r)
			}
			if kv := got.kv("k"); kv.Lease != c.r.lease || kv.ModRevision != c.r.modRev {
				t.Fatalf("as a KV: %+v", kv)
			}
		})
	}

	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"marker only", []byte{0}},
		{"extended without a lease", []byte{0, 1, 1, 1}},
		{"extended, truncated varint", []byte{0, 1, 1, 1, 0x80}},
		{"lease past int64", binary.AppendUvarint([]byte{0, 1, 1, 1}, math.MaxInt64+1)},
		{"plain, truncated", []byte{5, 0x80}},
	} {
		t.Run("malformed "+c.name, func(t *testing.T) {
			if r, err := decodeRecord(c.b); !errors.Is(err, ErrBadDB) {
				t.Fatalf("decodeRecord(%x) = %+v, %v; want ErrBadDB", c.b, r, err)
			}
		})
	}
}

// A history event of a key with a lease keeps its lease, in the put's
// record and in the previous one; a delete's record stays plain, as every
// layout wrote it.
func TestHistoryEventsCarryLeases(t *testing.T) {
	s := newTestStore(t)
	mustGrant(t, s, 3, 60)
	mustPutLease(t, s, "k", "1", 2, 3)
	mustPutLease(t, s, "k", "2", 4, 0)
	mustPutLease(t, s, "k", "3", 5, 3)
	mustDel(t, s, "k", 6)
	evs := s.TakeEvents()
	want := []struct {
		typ         messages.EventType
		lease, prev int64
	}{{messages.EventPut, 3, -1}, {messages.EventPut, 0, 3}, {messages.EventPut, 3, 0}, {messages.EventDelete, 0, 3}}
	if len(evs) != len(want) {
		t.Fatalf("events %s", kvtest.EventNames(evs))
	}
	for i, w := range want {
		e := evs[i]
		if e.Type != w.typ || e.KV.Lease != w.lease || (w.prev < 0) != (e.Prev == nil) || (e.Prev != nil && e.Prev.Lease != w.prev) {
			t.Fatalf("event %d = %+v (prev %+v), want %+v", i, e, e.Prev, w)
		}
	}
	h := historyOf(t, s.be.Tx())
	if len(h) != 4 || h[3].ch.typ != messages.EventDelete || h[3].ch.prev.lease != 3 || h[2].ch.cur.lease != 3 {
		t.Fatalf("history %v", h)
	}
	// The delete's record, as stored: plain, as an older layout wrote it.
	v := s.be.Tx().Bucket(bucketHistory).Get(histKey(6, 0))
	r := v[1+1+len("k"):] // type, key length, key
	if n, k := binary.Uvarint(r); k <= 0 || !bytes.Equal(r[k:k+int(n)], record{modRev: 6}.appendPlain(nil)) {
		t.Fatalf("the delete's record is stored as %x", r)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	read, _, err := kvtest.ReadEventsAsync(s, 1, 10)
	if err != nil || len(read) != 4 || read[0].KV.Lease != 3 || read[3].Prev.Lease != 3 {
		t.Fatalf("ReadEvents = %s, %v", kvtest.EventNames(read), err)
	}
}

// Granting records the lease with no revision change; a second grant of
// the id fails; leases list by id; a checkpoint records the remaining TTL
// of a lease held and changes nothing for one that is not.
func TestLeaseGrantCheckpointList(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "x", "1", 3)
	s.SetApplied(4, 1, nil)
	for _, id := range []int64{300, 2, 1 << 40, 1} {
		mustGrant(t, s, id, id%1000+5)
	}
	if err := s.GrantLease(2, 99); !errors.Is(err, messages.ErrLeaseExists) {
		t.Fatalf("a second grant of 2: %v, want ErrLeaseExists", err)
	}
	for _, bad := range [][2]int64{{0, 5}, {-1, 5}, {9, -1}} {
		if err := s.GrantLease(bad[0], bad[1]); err == nil {
			t.Fatalf("GrantLease(%d, %d) succeeded", bad[0], bad[1])
		}
	}
	if s.Revision() != 3 || len(s.TakeEvents()) != 1 {
		t.Fatalf("grants moved the revision to %d, or made events", s.Revision())
	}
	l, ok, err := s.Lease(2)
	if err != nil || !ok || l != (LeaseRecord{ID: 2, TTL: 7, Granted: 4}) {
		t.Fatalf("Lease(2) = %+v %v %v", l, ok, err)
	}
	for _, id := range []int64{0, -1, 5} {
		if _, ok, err := s.Lease(id); ok || err != nil {
			t.Fatalf("Lease(%d) = %v %v, want absent", id, ok, err)
		}
	}
	if err := s.CheckpointLease(300, 17); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckpointLease(5, 17); err != nil {
		t.Fatalf("a checkpoint of a lease not held: %v", err)
	}
	if err := s.CheckpointLease(300, -1); err == nil {
		t.Fatal("a negative checkpoint succeeded")
	}
	if _, ok, _ := s.Lease(5); ok {
		t.Fatal("a checkpoint made a lease")
	}
	list, err := s.Leases()
	if err != nil {
		t.Fatal(err)
	}
	want := []LeaseRecord{{ID: 1, TTL: 6, Granted: 4}, {ID: 2, TTL: 7, Granted: 4}, {ID: 300, TTL: 305, Remaining: 17, Granted: 4}, {ID: 1 << 40, TTL: (1<<40)%1000 + 5, Granted: 4}}
	if !slices.Equal(list, want) {
		t.Fatalf("Leases() = %+v, want %+v", list, want)
	}
	// 0 clears the checkpoint (a keep-alive renewed the lease whole).
	if err := s.CheckpointLease(300, 0); err != nil {
		t.Fatal(err)
	}
	if l, _, _ := s.Lease(300); l.Remaining != 0 {
		t.Fatalf("after a checkpoint of 0: %+v", l)
	}
	// Durable with the data.
	s.SetApplied(5, 1, nil)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	list2, err := s.Leases()
	if err != nil || len(list2) != 4 {
		t.Fatalf("after a commit: %+v %v", list2, err)
	}
}

// Revoking deletes every key attached, all at the revocation's revision,
// one event each in key order, and the lease with its index; keys of other
// leases, or of none, stay.
func TestRevokeLease(t *testing.T) {
	s := newTestStore(t)
	mustGrant(t, s, 1, 10)
	mustGrant(t, s, 2, 10)
	mustGrant(t, s, 3, 10)
	mustPutLease(t, s, "c", "3", 2, 1)
	mustPutLease(t, s, "a", "1", 3, 1)
	mustPutLease(t, s, "b", "2", 4, 1)
	mustPutLease(t, s, "d", "4", 5, 2)
	mustPut(t, s, "e", "5", 6)
	checkLeaseIndex(t, s)
	if got := leaseKeysOf(t, s, 1); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("LeaseKeys(1) = %q", got)
	}
	s.TakeEvents()
	used := s.Used()

	n, err := s.RevokeLease(1, 9)
	if err != nil || n != 3 {
		t.Fatalf("RevokeLease(1) = %d, %v; want 3 keys", n, err)
	}
	if s.Revision() != 9 || s.Keys() != 2 || s.Used() != used-Cost("a", []byte("1"))-Cost("b", []byte("2"))-Cost("c", []byte("3")) {
		t.Fatalf("revision %d, %d keys, %d used", s.Revision(), s.Keys(), s.Used())
	}
	evs := s.TakeEvents()
	if kvtest.EventNames(evs) != "[-a@9 -b@9 -c@9]" {
		t.Fatalf("events %s, want the three deletes at 9", kvtest.EventNames(evs))
	}
	for _, e := range evs {
		if e.Prev == nil || e.Prev.Lease != 1 {
			t.Fatalf("event %+v: its previous record names lease 1", e)
		}
	}
	var at9 []uint32
	for _, h := range historyOf(t, s.be.Tx()) {
		if h.rev == 9 {
			at9 = append(at9, h.seq)
		}
	}
	if !slices.Equal(at9, []uint32{0, 1, 2}) {
		t.Fatalf("history at 9: sequences %v, want 0, 1, 2", at9)
	}
	checkHistoryCounters(t, s)
	if _, ok, _ := s.Lease(1); ok {
		t.Fatal("lease 1 outlived its revocation")
	}
	if got := leaseKeysOf(t, s, 1); len(got) != 0 {
		t.Fatalf("LeaseKeys(1) after the revocation = %q", got)
	}
	if got := stateData(t, s); len(got) != 2 || got["d"] != "4" || got["e"] != "5" {
		t.Fatalf("state after the revocation %q", got)
	}
	checkLeaseIndex(t, s)
	// A read of the past sees the keys with their lease.
	res, err := s.Range(messages.Range{Start: "a", End: RangeEndAll, Revision: 8})
	if err != nil || len(res.KVs) != 5 || res.KVs[0].Lease != 1 || res.KVs[3].Lease != 2 || res.KVs[4].Lease != 0 {
		t.Fatalf("range at 8: %+v %v", res.KVs, err)
	}

	if _, err := s.RevokeLease(1, 10); !errors.Is(err, messages.ErrLeaseNotFound) {
		t.Fatalf("a second revocation: %v, want ErrLeaseNotFound", err)
	}
	for _, id := range []int64{0, -4} {
		if _, err := s.RevokeLease(id, 10); !errors.Is(err, messages.ErrLeaseNotFound) {
			t.Fatalf("RevokeLease(%d): %v, want ErrLeaseNotFound", id, err)
		}
	}
	// A lease without keys: revoked, and the revision stays, as in etcd.
	if n, err := s.RevokeLease(3, 11); err != nil || n != 0 || s.Revision() != 9 || len(s.TakeEvents()) != 0 {
		t.Fatalf("revoking a lease without keys: %d, %v; revision %d", n, err, s.Revision())
	}
	if list, _ := s.Leases(); len(list) != 1 || list[0].ID != 2 {
		t.Fatalf("leases left %+v", list)
	}
}

// A put naming a lease the state does not hold writes nothing, not even
// over an existing key.
func TestPutMissingLease(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "k", "old", 2)
	mustGrant(t, s, 4, 10)
	if _, err := s.RevokeLease(4, 3); err != nil {
		t.Fatal(err)
	}
	s.TakeEvents()
	before, hist := stateData(t, s), s.HistoryEvents()
	for _, c := range []struct {
		key   string
		lease int64
	}{{"k", 5}, {"new", 5}, {"k", 4}, {"k", -1}} {
		if err := s.Put(c.key, []byte("v"), 7, c.lease); !errors.Is(err, messages.ErrLeaseNotFound) {
			t.Fatalf("put %q with lease %d: %v, want ErrLeaseNotFound", c.key, c.lease, err)
		}
	}
	if got := stateData(t, s); len(got) != len(before) || got["k"] != "old" {
		t.Fatalf("state %q, want %q", got, before)
	}
	if s.Revision() != 2 || s.HistoryEvents() != hist || len(s.TakeEvents()) != 0 || s.Keys() != 1 {
		t.Fatalf("a refused put changed the store: revision %d", s.Revision())
	}
	checkLeaseIndex(t, s)
}

// A key moves between leases with its puts, and leaves its lease's index
// when it is deleted, alone or in a range.
func TestLeaseAttachment(t *testing.T) {
	s := newTestStore(t)
	mustGrant(t, s, 1, 10)
	mustGrant(t, s, 2, 10)
	steps := []struct {
		name   string
		do     func(rev uint64) error
		k1, k2 []string // the keys of leases 1 and 2 after it
		lease  int64    // k's lease after it (-1: k is absent)
	}{
		{"put k with 1", func(rev uint64) error { return s.Put("k", []byte("v"), rev, 1) }, []string{"k"}, nil, 1},
		{"put k again with 1", func(rev uint64) error { return s.Put("k", []byte("w"), rev, 1) }, []string{"k"}, nil, 1},
		{"move k to 2", func(rev uint64) error { return s.Put("k", []byte("v"), rev, 2) }, nil, []string{"k"}, 2},
		{"detach k", func(rev uint64) error { return s.Put("k", []byte("v"), rev, 0) }, nil, nil, 0},
		{"attach k to 1", func(rev uint64) error { return s.Put("k", []byte("v"), rev, 1) }, []string{"k"}, nil, 1},
		{"delete k", func(rev uint64) error { _, err := s.DeleteRange("k", "", rev); return err }, nil, nil, -1},
		{"put k and k2 with 2", func(rev uint64) error {
			if err := s.Put("k", []byte("v"), rev, 2); err != nil {
				return err
			}
			return s.Put("k2", []byte("v"), rev, 2)
		}, nil, []string{"k", "k2"}, 2},
		{"delete the range k to l", func(rev uint64) error { _, err := s.DeleteRange("k", "l", rev); return err }, nil, nil, -1},
	}
	for i, st := range steps {
		rev := uint64(i + 2)
		if err := st.do(rev); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := leaseKeysOf(t, s, 1); !slices.Equal(got, st.k1) {
			t.Fatalf("after %s: lease 1 holds %q, want %q", st.name, got, st.k1)
		}
		if got := leaseKeysOf(t, s, 2); !slices.Equal(got, st.k2) {
			t.Fatalf("after %s: lease 2 holds %q, want %q", st.name, got, st.k2)
		}
		kv, ok, err := s.Get("k")
		if err != nil || ok != (st.lease >= 0) || (ok && kv.Lease != st.lease) {
			t.Fatalf("after %s: k = %+v %v %v, want lease %d", st.name, kv, ok, err, st.lease)
		}
		checkLeaseIndex(t, s)
	}
}

// A transaction's puts take their lease; a lease missing in the branch
// chosen fails it whole, before anything is written, while one in the
// branch not chosen does not matter.
func TestTxnLeases(t *testing.T) {
	s := newTestStore(t)
	mustGrant(t, s, 1, 10)
	mustPutLease(t, s, "a", "0", 2, 1)
	leased := func(key, value string, lease int64) messages.TxnOp {
		op := kvtest.TxnPut(key, value)
		op.Lease = lease
		return op
	}
	ok, res, err := s.Txn(messages.Txn{
		Compares: []messages.Compare{kvtest.CmpNum("a", messages.CompareVersion, messages.CompareEqual, 1)},
		Success:  []messages.TxnOp{kvtest.TxnGet("a"), leased("b", "1", 1), leased("a", "1", 0), kvtest.TxnRange(messages.Range{Start: "a", End: RangeEndAll})},
		Failure:  []messages.TxnOp{leased("c", "1", 99)},
	}, 3, true)
	if err != nil || !ok {
		t.Fatalf("txn: %v %v", ok, err)
	}
	if res[0].KVs[0].Lease != 1 {
		t.Fatalf("the get read %+v, want lease 1", res[0].KVs[0])
	}
	if kvs := res[3].KVs; len(kvs) != 2 || kvs[0].Lease != 0 || kvs[1].Lease != 1 {
		t.Fatalf("the range read %+v", kvs)
	}
	if got := leaseKeysOf(t, s, 1); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("lease 1 holds %q, want b", got)
	}
	s.TakeEvents()
	before := stateData(t, s)

	for _, branch := range []string{"success", "failure"} {
		txn := messages.Txn{Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")}}
		ops := []messages.TxnOp{kvtest.TxnDel("a"), leased("d", "1", 1), leased("e", "1", 7)}
		if branch == "success" {
			txn.Success = ops
		} else {
			txn.Compares[0].Value = []byte("no")
			txn.Failure = ops
		}
		if _, _, err := s.Txn(txn, 4, true); !errors.Is(err, messages.ErrLeaseNotFound) {
			t.Fatalf("%s branch with a missing lease: %v, want ErrLeaseNotFound", branch, err)
		}
		if got := stateData(t, s); len(got) != len(before) || got["a"] != "1" || len(s.TakeEvents()) != 0 || s.Revision() != 3 {
			t.Fatalf("%s branch with a missing lease wrote: %q, revision %d", branch, got, s.Revision())
		}
	}
	checkLeaseIndex(t, s)
}

// oldDigest is Digest as every layout before leases computed it.
func oldDigest(t testing.TB, s *Store) string {
	t.Helper()
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	err := ForEach(s.be.Tx(), func(k, v []byte) error {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
		h.Write(k)
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(v)))])
		h.Write(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func digestOf(t testing.TB, s *Store) string {
	t.Helper()
	d, err := s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A state without leases hashes as before leases; the leases held, the
// keys attached to them and which lease each is attached to all change the
// digest.
func TestDigestLeases(t *testing.T) {
	build := func(grants map[int64]int64, attach map[string]int64) *Store {
		s := newTestStore(t)
		for _, id := range []int64{1, 2} {
			if ttl, ok := grants[id]; ok {
				mustGrant(t, s, id, ttl)
			}
		}
		for i, k := range []string{"a", "b", strings.Repeat("c", 200)} {
			mustPutLease(t, s, k, "v"+k, uint64(i+2), attach[k])
		}
		return s
	}
	plain := build(nil, nil)
	if d := digestOf(t, plain); d != oldDigest(t, plain) {
		t.Fatalf("the digest of a state without leases changed: %s, want %s", d, oldDigest(t, plain))
	}
	both := map[int64]int64{1: 10, 2: 10}
	digests := map[string]string{}
	for _, c := range []struct {
		name   string
		grants map[int64]int64
		attach map[string]int64
	}{
		{"no leases", nil, nil},
		{"leases held, none attached", both, nil},
		{"lease 2 with another TTL", map[int64]int64{1: 10, 2: 11}, nil},
		{"only lease 1", map[int64]int64{1: 10}, nil},
		{"a to 1", both, map[string]int64{"a": 1}},
		{"a to 2", both, map[string]int64{"a": 2}},
		{"b to 1", both, map[string]int64{"b": 1}},
		{"a and b to 1", both, map[string]int64{"a": 1, "b": 1}},
	} {
		d := digestOf(t, build(c.grants, c.attach))
		if other, ok := digests[d]; ok {
			t.Fatalf("%s and %s share a digest", c.name, other)
		}
		digests[d] = c.name
		if again := digestOf(t, build(c.grants, c.attach)); again != d {
			t.Fatalf("%s: two stores of one state differ", c.name)
		}
	}
}

// Reset empties the leases with the rest of the state.
func TestResetEmptiesLeases(t *testing.T) {
	s := newTestStore(t)
	mustGrant(t, s, 1, 10)
	mustPutLease(t, s, "a", "1", 2, 1)
	if err := s.Reset(5); err != nil {
		t.Fatal(err)
	}
	if list, err := s.Leases(); err != nil || len(list) != 0 {
		t.Fatalf("leases after Reset: %+v %v", list, err)
	}
	if n := s.be.Tx().Bucket(bucketLeaseKeys).Stats().KeyN; n != 0 {
		t.Fatalf("the lease index holds %d entries after Reset", n)
	}
	mustGrant(t, s, 1, 10) // the id is free again
	checkLeaseIndex(t, s)
}

// Leases go with the db to a follower.
func TestLeasesInSnapshotDB(t *testing.T) {
	src := newTestStore(t)
	mustGrant(t, src, 7, 30)
	mustPutLease(t, src, "k", "v", 2, 7)
	if err := src.CheckpointLease(7, 12); err != nil {
		t.Fatal(err)
	}
	src.SetApplied(2, 1, nil)
	if err := src.Commit(); err != nil {
		t.Fatal(err)
	}
	rc, _, err := src.SnapshotReader()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir() + "/2.snap.db"
	err = ReceiveSnapshotDB(dst, 2, rc)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	follower := newTestStore(t)
	install(t, follower, dst)
	if l, ok, err := follower.Lease(7); err != nil || !ok || l.TTL != 30 || l.Remaining != 12 {
		t.Fatalf("lease 7 on the follower: %+v %v %v", l, ok, err)
	}
	if got := leaseKeysOf(t, follower, 7); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("lease 7's keys on the follower: %q", got)
	}
	if digestOf(t, follower) != digestOf(t, src) {
		t.Fatal("the follower's digest differs")
	}
}
