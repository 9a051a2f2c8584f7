package apply

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/backend/backendtest"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
	"github.com/raftkv/node/metrics"
)

// tmpStore is an empty store over a db in a temporary directory of t,
// closed when the test ends.
func tmpStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.New(backendtest.NewTmpBackend(t))
	if err != nil {
		t.Fatalf("store over a new db: %v", err)
	}
	return st
}

// newApplier is the applier of st in format f, with a quota (0: none).
func newApplier(t testing.TB, st *store.Store, f Format, quota uint64) *Applier {
	t.Helper()
	ap, err := New(Config{Store: st, Format: f, Quota: quota})
	if err != nil {
		t.Fatalf("applier: %v", err)
	}
	return ap
}

// entryAt is a normal entry at index idx.
func entryAt(idx uint64, data []byte) *raftpb.Entry {
	return &raftpb.Entry{Term: new(uint64(1)), Index: new(idx), Type: raftpb.EntryNormal.Enum(), Data: data}
}

// txnData is the native data of a transaction proposed under reqID, as it
// reaches the log: unchecked.
func txnData(reqID uint64, txn messages.Txn) []byte {
	return Command{Op: OpTxn, ReqID: reqID, Value: encodeTxn(txn)}.encode()
}

// putData is the native data of a put.
func putData(reqID uint64, key, value string) []byte {
	return Command{Op: OpPut, ReqID: reqID, Key: key, Value: []byte(value)}.encode()
}

func waitAll(uint64) bool  { return true }
func waitNone(uint64) bool { return false }

// applyEntry applies e with every request waiting; a db error fails t.
func applyEntry(t testing.TB, ap *Applier, e *raftpb.Entry) Applied {
	t.Helper()
	res, err := ap.Apply(e, waitAll)
	if err != nil {
		t.Fatalf("apply entry %d: %v", e.GetIndex(), err)
	}
	return res
}

// outcomeOf applies the data of one command, proposed under reqID (not
// 0), as the entry at idx, and returns its one outcome.
func outcomeOf(t testing.TB, ap *Applier, idx uint64, data []byte, reqID uint64, waiting func(uint64) bool) Outcome {
	t.Helper()
	res, err := ap.Apply(entryAt(idx, data), waiting)
	if err != nil {
		t.Fatalf("apply entry %d: %v", idx, err)
	}
	if len(res.Outcomes) != 1 || res.Outcomes[0].ReqID != reqID {
		t.Fatalf("entry %d answered %+v, want one outcome for request %d", idx, res.Outcomes, reqID)
	}
	return res.Outcomes[0]
}

// putAt writes key at revision rev straight into the store.
func putAt(t testing.TB, st *store.Store, key, value string, rev uint64) {
	t.Helper()
	if err := st.Put(key, []byte(value), rev, 0); err != nil {
		t.Fatalf("put %q at %d: %v", key, rev, err)
	}
}

// getKV reads key as the store holds it (zero when absent).
func getKV(t testing.TB, st *store.Store, key string) messages.KV {
	t.Helper()
	kv, ok, err := st.Get(key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if !ok {
		return messages.KV{}
	}
	return kv
}

// dataOf reads every key and value of a store.
func dataOf(t testing.TB, st *store.Store) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := store.ForEach(st.Backend().Tx(), func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatalf("read the store: %v", err)
	}
	return out
}

// Applying is total: an entry that reached the log past the API's checks
// (a bug, an older binary, raftexample's members) is refused as that
// entry's result, its client answered ErrEntryRefused, and nothing but the
// applied index changes. The applier's side of the kv actor's
// TestActorRefusesEntries: each case applies the bad entry at index 2,
// between good ones.
func TestApplierRefusesEntries(t *testing.T) {
	huge := strings.Repeat("k", 40000) // bbolt refuses keys over 32,768 bytes
	good := putData(77, "g", "v")
	const id = 1234 // the waiting client's request
	cases := []struct {
		name string
		data []byte
		// answered says the client of id hears ErrEntryRefused; batch
		// that the whole batch 5 is refused; applied lists keys the
		// entry did write. Each entry makes one refusal.
		answered bool
		batch    bool
		applied  []string
	}{
		{name: "a put of a 40,000-byte key", answered: true, data: putData(id, huge, "v")},
		{name: "a delete of a 40,000-byte key", answered: true, data: Command{Op: OpDelete, ReqID: id, Key: huge}.encode()},
		{name: "a put of an empty key", answered: true, data: putData(id, "", "v")},
		{name: "an unknown op", answered: true, data: Command{Op: 200, ReqID: id, Key: "k"}.encode()},
		{name: "a put with a lease whose key the lease index cannot hold", answered: true,
			data: Command{Op: OpPut, ReqID: id, Key: strings.Repeat("k", maxStoredLeasedKey+1), Lease: 1}.encode()},
		{name: "a lease grant of TTL 0", answered: true, data: Command{Op: OpLeaseGrant, ReqID: id, Value: []byte{1, 0}}.encode()},
		{name: "a lease revocation with a key", answered: true, data: Command{Op: OpLeaseRevoke, ReqID: id, Key: "k", Value: []byte{1}}.encode()},
		{name: "garbage", data: []byte{0xff}},
		{name: "a transaction writing a 40,000-byte key", answered: true,
			data: txnData(id, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "1"), kvtest.TxnPut(huge, "2")}})},
		{name: "a transaction writing a key twice", answered: true,
			data: txnData(id, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "1"), kvtest.TxnPut("a", "2")}})},
		{name: "a transaction cut short", answered: true,
			data: Command{Op: OpTxn, ReqID: id, Value: encodeTxn(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "1")}})[:4]}.encode()},
		{name: "a batch with one bad command", answered: true, applied: []string{"g"},
			data: EncodeBatch(5, [][]byte{good, Command{Op: OpPut, ReqID: id, Key: huge}.encode()}, 0)},
		{name: "a batch whose framing is broken", batch: true, data: func() []byte {
			b := EncodeBatch(5, [][]byte{good, good}, 0)
			return b[:len(b)-1]
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := tmpStore(t)
			m := metrics.New(nil)
			ap, err := New(Config{Store: st, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			applyEntry(t, ap, entryAt(1, putData(0, "a", "0")))
			before, rev := dataOf(t, st), st.Revision()

			res := applyEntry(t, ap, entryAt(2, c.data))
			var refusals []uint64
			for _, o := range res.Outcomes {
				switch {
				case errors.Is(o.Err, messages.ErrEntryRefused):
					refusals = append(refusals, o.ReqID)
					if !errors.Is(o.Result.Err, messages.ErrEntryRefused) || o.Result.Index != 2 {
						t.Errorf("refusal answered %+v, want the error at index 2", o.Result)
					}
				case o.Err != nil:
					t.Errorf("request %d answered %v, want ErrEntryRefused or success", o.ReqID, o.Err)
				}
			}
			if c.answered && (len(refusals) != 1 || refusals[0] != id) || !c.answered && len(refusals) != 0 {
				t.Errorf("refused requests %v, want request %d's: %v", refusals, id, c.answered)
			}
			if c.batch != (res.BatchRefused != nil) || (c.batch && (res.Proposal != 5 || !errors.Is(res.BatchRefused, messages.ErrEntryRefused))) {
				t.Errorf("applied %+v, want the batch refused: %v", res, c.batch)
			}
			after := dataOf(t, st)
			for _, k := range c.applied {
				if _, ok := after[k]; !ok {
					t.Errorf("key %s of the entry's good command not written", k)
				}
				delete(after, k)
			}
			if !maps.Equal(after, before) {
				t.Errorf("state after the refused entry %q, want %q", after, before)
			}
			if len(c.applied) == 0 && st.Revision() != rev {
				t.Errorf("revision %d after the refused entry, want %d", st.Revision(), rev)
			}
			if got, _ := st.Applied(); got != 2 {
				t.Errorf("applied index %d after the refused entry, want 2", got)
			}
			if got := promtest.ToFloat64(m.RefusedEntries); got != 1 {
				t.Errorf("%v refusals counted, want 1", got)
			}
			// The applier goes on: the next entry applies.
			applyEntry(t, ap, entryAt(3, putData(0, "a", "3")))
			if kv := getKV(t, st, "a"); string(kv.Value) != "3" || kv.ModRevision != 3 {
				t.Errorf("a = %+v after the next entry, want 3 at 3", kv)
			}
		})
	}

	// What the kv actor refuses as a whole (a conf change that does not
	// decode, an unknown entry type) is counted here too.
	m := metrics.New(nil)
	ap, err := New(Config{Store: tmpStore(t), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ap.Refuse(2, errors.New("unknown entry type 7"))
	if got := promtest.ToFloat64(m.RefusedEntries); got != 1 {
		t.Errorf("Refuse counted %v refusals, want 1", got)
	}
}

// A refusal is decided by the entry's bytes alone: two stores applying the
// same log, bad entries included, hold the same state.
func TestApplierRefusalsAreAlike(t *testing.T) {
	huge := strings.Repeat("x", maxStoredKey+1)
	log := []*raftpb.Entry{
		entryAt(1, putData(0, "a", "1")),
		entryAt(2, Command{Op: OpPut, ReqID: 1, Key: huge}.encode()),
		entryAt(3, txnData(2, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("b", "1"), kvtest.TxnPut(huge, "2")}})),
		entryAt(4, EncodeBatch(3, [][]byte{putData(4, "c", "1"), {0xff}}, 0)),
		entryAt(5, putData(0, "d", "1")),
	}
	var sums []string
	for range 2 {
		st := tmpStore(t)
		ap := newApplier(t, st, FormatNative, 0)
		for _, e := range log {
			applyEntry(t, ap, e)
		}
		sum, err := st.Digest()
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		if d := dataOf(t, st); len(d) != 3 {
			t.Errorf("state holds %q, want a, c and d", d)
		}
	}
	if sums[0] != sums[1] {
		t.Fatal("two stores applying one log differ")
	}
}

// An empty entry (a new leader's) moves the applied index and answers
// nobody; a raftexample entry without a request id answers nobody either.
func TestApplierEmptyAndAnonymousEntries(t *testing.T) {
	for _, f := range []Format{FormatNative, FormatRaftexample} {
		t.Run(f.String(), func(t *testing.T) {
			st := tmpStore(t)
			ap := newApplier(t, st, f, 0)
			if res := applyEntry(t, ap, entryAt(1, nil)); res.Proposal != 0 || len(res.Outcomes) != 0 || res.BatchRefused != nil {
				t.Fatalf("an empty entry applied as %+v", res)
			}
			if idx, _ := st.Applied(); idx != 1 {
				t.Fatalf("applied %d after an empty entry, want 1", idx)
			}
			codec, err := f.Codec()
			if err != nil {
				t.Fatal(err)
			}
			data, err := codec.Encode(Command{Op: OpPut, Key: "k", Value: []byte("v")})
			if err != nil {
				t.Fatal(err)
			}
			if res := applyEntry(t, ap, entryAt(2, data)); len(res.Outcomes) != 0 {
				t.Fatalf("a put without request id answered %+v", res.Outcomes)
			}
			if kv := getKV(t, st, "k"); string(kv.Value) != "v" || kv.ModRevision != 2 {
				t.Fatalf("k = %+v, want v at 2", kv)
			}
		})
	}
}

// A put's answer carries the entry's index and the store's revision; a
// command applied before (its request id recorded) is skipped.
func TestApplierAnswersAndSkipsDuplicates(t *testing.T) {
	st := tmpStore(t)
	ap := newApplier(t, st, FormatNative, 0)
	o := outcomeOf(t, ap, 1, putData(1<<48|7, "k", "v1"), 1<<48|7, waitAll)
	if o.Err != nil || o.Result.Index != 1 || o.Result.Revision != 1 {
		t.Fatalf("put answered %+v, want success at index and revision 1", o)
	}
	if res := applyEntry(t, ap, entryAt(2, putData(1<<48|7, "k", "v2"))); len(res.Outcomes) != 0 {
		t.Fatalf("a command applied again answered %+v", res.Outcomes)
	}
	if kv := getKV(t, st, "k"); string(kv.Value) != "v1" || kv.Version != 1 {
		t.Fatalf("k = %+v after a duplicate, want v1 version 1", kv)
	}
	o = outcomeOf(t, ap, 3, Command{Op: OpDelete, ReqID: 1<<48 | 8, Key: "k"}.encode(), 1<<48|8, waitAll)
	if o.Err != nil || len(o.Result.Results) != 1 || o.Result.Results[0].Deleted != 1 {
		t.Fatalf("delete answered %+v, want one key deleted", o)
	}
	if o.Result.Index != 3 || o.Result.Revision != 3 {
		t.Fatalf("delete answered at index %d revision %d, want 3 and 3", o.Result.Index, o.Result.Revision)
	}
}

// A publication of client URLs updates a member the store holds, and
// changes nothing for one it does not (removed while it was in flight);
// either way its proposer hears it applied.
func TestApplierPublishesClientURLs(t *testing.T) {
	st := tmpStore(t)
	if err := st.AddMember(1, "http://a:2380"); err != nil {
		t.Fatal(err)
	}
	ap := newApplier(t, st, FormatNative, 0)
	pub := ProposeAttrs(1, []string{"http://a:2379", "http://a:2479"})
	pub.ReqID = 10
	if o := outcomeOf(t, ap, 1, pub.encode(), 10, waitAll); o.Err != nil || o.Result.Index != 1 {
		t.Fatalf("publication answered %+v, want success at 1", o)
	}
	if got := st.Clients(1); !slices.Equal(got, []string{"http://a:2379", "http://a:2479"}) {
		t.Fatalf("member 1 publishes %q", got)
	}
	gone := ProposeAttrs(2, []string{"http://b:2379"})
	gone.ReqID = 11
	if o := outcomeOf(t, ap, 2, gone.encode(), 11, waitAll); o.Err != nil {
		t.Fatalf("publication of a member not held answered %v", o.Err)
	}
	if _, ok := st.Member(2); ok || st.Clients(2) != nil {
		t.Fatalf("a publication made member 2 (%q)", st.Clients(2))
	}
	if st.Revision() != store.FirstRevision || st.Keys() != 0 {
		t.Fatalf("a publication wrote keys: revision %d, %d keys", st.Revision(), st.Keys())
	}
}

// Replay writes nothing: it answers the writes of entries the store holds
// already where the store proves the outcome (a put still the key's last
// write, a publication), refuses what would be refused, and leaves the
// rest (a delete, a transaction, an overwritten put) unanswered.
func TestApplierReplay(t *testing.T) {
	st := tmpStore(t)
	ap := newApplier(t, st, FormatNative, 0)
	log := []*raftpb.Entry{
		entryAt(1, putData(1, "k", "1")),
		entryAt(2, putData(2, "k", "2")),
		entryAt(3, putData(3, "j", "1")),
		entryAt(4, Command{Op: OpDelete, ReqID: 4, Key: "gone"}.encode()),
		entryAt(5, txnData(5, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("t", "1")}})),
		entryAt(6, func() []byte { c := ProposeAttrs(1, nil); c.ReqID = 6; return c.encode() }()),
		entryAt(7, EncodeBatch(70, [][]byte{putData(7, "b", "1"), putData(8, "k", "3")}, 0)),
		entryAt(8, putData(9, strings.Repeat("k", maxStoredKey+1), "v")),
	}
	for _, e := range log {
		applyEntry(t, ap, e)
	}
	st.TakeEvents()
	before, was := metaOf(st), dataOf(t, st)

	answered := map[uint64]error{}
	for _, e := range log {
		res, err := ap.Replay(e)
		if err != nil {
			t.Fatalf("replay %d: %v", e.GetIndex(), err)
		}
		if e.GetIndex() == 7 && res.Proposal != 70 {
			t.Errorf("the batch replayed as proposal %d, want 70", res.Proposal)
		}
		for _, o := range res.Outcomes {
			answered[o.ReqID] = o.Err
			// A put proven applied says its entry's index; a publication
			// is answered as of the store's applied index, as the kv
			// actor answered it before the split.
			want := e.GetIndex()
			if o.ReqID == 6 || o.Err != nil {
				want, _ = st.Applied()
			}
			if o.Result.Index != want {
				t.Errorf("request %d answered at index %d, want %d", o.ReqID, o.Result.Index, want)
			}
		}
	}
	// k's last write is 8 (in the batch): 1 and 2 were overwritten; a
	// delete (4) and a transaction (5) are not proven; 9 is refused.
	if len(answered) != 5 || !errors.Is(answered[9], messages.ErrEntryRefused) {
		t.Errorf("answered %v, want 3, 6, 7 and 8, and 9 refused", answered)
	}
	for _, id := range []uint64{3, 6, 7, 8} {
		if err, ok := answered[id]; !ok || err != nil {
			t.Errorf("request %d: answered %v (%v), want success", id, ok, err)
		}
	}
	for _, id := range []uint64{1, 2, 4, 5} {
		if _, ok := answered[id]; ok {
			t.Errorf("request %d answered, want no answer", id)
		}
	}
	if m := metaOf(st); m != before || !maps.Equal(dataOf(t, st), was) || len(st.TakeEvents()) != 0 {
		t.Errorf("replay changed the store: %+v -> %+v", before, m)
	}
}
