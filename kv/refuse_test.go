package kv

import (
	"errors"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/messages"
)

// Applying is total: an entry that reached the log past the API's checks
// (a bug, an older binary, raftexample's members) is refused as that
// entry's result, its client answered ErrEntryRefused, and the member goes
// on applying. Each case applies the bad entry at index 2 between good
// ones, with the client of the bad command (if it has one) waiting.
func TestActorRefusesEntries(t *testing.T) {
	huge := strings.Repeat("k", 40000) // bbolt refuses keys over 32,768 bytes
	good := command{op: opPut, reqID: 77, key: "g", value: []byte("v")}.encode()
	cases := []struct {
		name string
		// entry builds the entry at index 2; id is the request id of the
		// waiting client's proposal, to put in the bad command.
		entry func(t *testing.T, id uint64) *raftpb.Entry
		// answered says the waiting client learns of the refusal (its
		// id is in the entry); applied lists keys the entry did write.
		answered bool
		applied  []string
	}{
		{name: "a put of a 40,000-byte key", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, command{op: opPut, reqID: id, key: huge, value: []byte("v")}.encode())
		}},
		{name: "a delete of a 40,000-byte key", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, command{op: opDelete, reqID: id, key: huge}.encode())
		}},
		{name: "a put of an empty key", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, command{op: opPut, reqID: id, value: []byte("v")}.encode())
		}},
		{name: "an unknown op", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, command{op: 9, reqID: id, key: "k"}.encode())
		}},
		{name: "garbage", entry: func(*testing.T, uint64) *raftpb.Entry { return normalEntry(2, []byte{0xff}) }},
		{name: "a transaction writing a 40,000-byte key", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return txnEntry(2, id, messages.Txn{Success: []messages.TxnOp{txnPut("a", "1"), txnPut(huge, "2")}})
		}},
		{name: "a transaction writing a key twice", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return txnEntry(2, id, messages.Txn{Success: []messages.TxnOp{txnPut("a", "1"), txnPut("a", "2")}})
		}},
		{name: "a transaction cut short", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, command{op: opTxn, reqID: id, value: encodeTxn(messages.Txn{Success: []messages.TxnOp{txnPut("a", "1")}})[:4]}.encode())
		}},
		{name: "a batch with one bad command", answered: true, applied: []string{"g"}, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			bad := command{op: opPut, reqID: id, key: huge}.encode()
			return normalEntry(2, encodeBatch(5, [][]byte{good, bad}, 0))
		}},
		{name: "a batch whose framing is broken", entry: func(*testing.T, uint64) *raftpb.Entry {
			b := encodeBatch(5, [][]byte{good, good}, 0)
			return normalEntry(2, b[:len(b)-1])
		}},
		{name: "a conf change that does not decode", entry: func(*testing.T, uint64) *raftpb.Entry {
			return &raftpb.Entry{Index: new(uint64(2)), Type: raftpb.EntryConfChange.Enum(), Data: []byte{0xff, 0xff}}
		}},
		{name: "a conf change v2 that does not decode", entry: func(*testing.T, uint64) *raftpb.Entry {
			return &raftpb.Entry{Index: new(uint64(2)), Type: raftpb.EntryConfChangeV2.Enum(), Data: []byte{0xff, 0xff}}
		}},
		{name: "an unknown entry type", entry: func(*testing.T, uint64) *raftpb.Entry {
			return &raftpb.Entry{Index: new(uint64(2)), Type: raftpb.EntryType(7).Enum(), Data: []byte("x")}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpts{})
			f.wantDelivery(t, f.apply(putEntry(1, "a", "0")))
			w := f.request(messages.Put{Key: "w", Value: []byte("v")})
			p := recv[messages.Propose](t, f.raft.got, "Propose")
			before := f.view(t)

			f.wantDelivery(t, f.apply(c.entry(t, p.ID)))
			if c.answered {
				w.wantErr(t, messages.ErrEntryRefused)
			} else {
				w.pending(t)
			}
			after := f.view(t)
			for _, k := range c.applied {
				if _, ok := after.data[k]; !ok {
					t.Errorf("key %s of the entry's good command not written", k)
				}
				delete(after.data, k)
			}
			checkState(t, "state after the refused entry", after, before)
			if got := f.db(t).applied; got != 2 {
				t.Errorf("applied index %d after the refused entry, want 2", got)
			}
			// The member goes on: the next entry applies.
			f.wantDelivery(t, f.apply(putEntry(3, "a", "3")))
			f.get(t, "a", str("3"), 3)
			f.noFatal(t)
		})
	}
}

// A refusal is decided by the entry's bytes alone: two state machines
// applying the same log, bad entries included, hold the same state.
func TestRefusalsAreAlikeOnEveryMember(t *testing.T) {
	huge := strings.Repeat("x", maxStoredKey+1)
	log := []*raftpb.Entry{
		putEntry(1, "a", "1"),
		normalEntry(2, command{op: opPut, reqID: 1, key: huge}.encode()),
		txnEntry(3, 2, messages.Txn{Success: []messages.TxnOp{txnPut("b", "1"), txnPut(huge, "2")}}),
		normalEntry(4, encodeBatch(3, [][]byte{command{op: opPut, reqID: 4, key: "c", value: []byte("1")}.encode(), {0xff}}, 0)),
		putEntry(5, "d", "1"),
	}
	var sums []string
	for range 2 {
		f := newFixture(t, fixtureOpts{})
		f.wantDelivery(t, f.apply(log...))
		f.noFatal(t)
		var sum string
		var err error
		f.inspect(t, func(a *Actor) { sum, err = a.st.digest() })
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		if v := f.view(t); len(v.data) != 3 {
			t.Errorf("state holds %d keys, want a, c and d", len(v.data))
		}
	}
	if sums[0] != sums[1] {
		t.Fatal("two state machines applying one log differ")
	}
}

// The checks before proposing use the API's limit, the checks when
// applying bbolt's: an entry an older binary applied (a key between the
// two) applies here too, so members of two releases agree.
func TestKeyLimits(t *testing.T) {
	for _, c := range []struct {
		name          string
		key           string
		proposed, put error
	}{
		{"empty", "", messages.ErrEmptyKey, messages.ErrEmptyKey},
		{"at the API's limit", strings.Repeat("k", messages.MaxKeyBytes), nil, nil},
		{"over the API's limit", strings.Repeat("k", messages.MaxKeyBytes+1), messages.ErrKeyTooLarge, nil},
		{"at bbolt's limit", strings.Repeat("k", maxStoredKey), messages.ErrKeyTooLarge, nil},
		{"over bbolt's limit", strings.Repeat("k", maxStoredKey+1), messages.ErrKeyTooLarge, messages.ErrKeyTooLarge},
	} {
		cmd := command{op: opPut, key: c.key}
		if err := checkProposed(cmd); !errors.Is(err, c.proposed) || (c.proposed == nil) != (err == nil) {
			t.Errorf("%s: checkProposed = %v, want %v", c.name, err, c.proposed)
		}
		if err := checkStored(cmd); !errors.Is(err, c.put) || (c.put == nil) != (err == nil) {
			t.Errorf("%s: checkStored = %v, want %v", c.name, err, c.put)
		}
	}
}

// The kv actor refuses, before proposing, a write or transaction over the
// API's limits, whichever door it came through.
func TestActorRefusesBeforeProposing(t *testing.T) {
	huge := strings.Repeat("k", messages.MaxKeyBytes+1)
	f := newFixture(t, fixtureOpts{})
	for _, c := range []struct {
		name string
		req  any
		want error
	}{
		{"put", messages.Put{Key: huge}, messages.ErrKeyTooLarge},
		{"put of no key", messages.Put{}, messages.ErrEmptyKey},
		{"delete", messages.Delete{Key: huge}, messages.ErrKeyTooLarge},
		{"txn put", messages.Txn{Success: []messages.TxnOp{txnPut(huge, "v")}}, messages.ErrKeyTooLarge},
		{"txn compare", messages.Txn{Compares: []messages.Compare{{Key: huge, Target: messages.CompareVersion, Op: messages.CompareEqual}}}, messages.ErrKeyTooLarge},
		{"txn get", messages.Txn{Failure: []messages.TxnOp{{Type: messages.OpGet, Key: huge}}}, messages.ErrKeyTooLarge},
	} {
		f.request(c.req).wantErr(t, c.want)
	}
	f.raftQuiet(t)
}
