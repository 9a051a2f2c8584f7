package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/raftkv/node/kv/apply"
	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/messages"
)

// proposeTxn is the command the kv actor proposes for txn.
func proposeTxn(t *testing.T, txn messages.Txn) apply.Command {
	t.Helper()
	c, _, _, err := apply.ProposeTxn(txn)
	if err != nil {
		t.Fatalf("ProposeTxn: %v", err)
	}
	return c
}

// standIn is a key that uncheckedTxnEntry replaces.
const standIn = "\x00stand-in\x00"

// uncheckedTxnEntry is the entry at idx of a transaction that reached the
// log past the checks before proposing (a bug, an older binary, a peer),
// proposed under reqID: txn, in which the key standIn appears once, is
// encoded as the kv actor proposes it, then the stand-in's encoding (its
// length, then its bytes) is replaced by key's. The entry must be refused
// when applied for the reason want, which the test checks.
func uncheckedTxnEntry(t *testing.T, idx, reqID uint64, txn messages.Txn, key string, want error) *raftpb.Entry {
	t.Helper()
	c := proposeTxn(t, txn)
	from := append(binary.AppendUvarint(nil, uint64(len(standIn))), standIn...)
	to := append(binary.AppendUvarint(nil, uint64(len(key))), key...)
	if n := bytes.Count(c.Value, from); n != 1 {
		t.Fatalf("the stand-in key appears %d times in the encoded transaction, want once", n)
	}
	c.ReqID, c.Value = reqID, bytes.Replace(c.Value, from, to, 1)
	data := nativeEntryData(t, c)
	if err := apply.ValidEntry(nativeCodec(t), data); !errors.Is(err, want) {
		t.Fatalf("the transaction with the key swapped in is refused for %v, want %v", err, want)
	}
	return normalEntry(idx, data)
}

// Applying is total: an entry that reached the log past the API's checks
// (a bug, an older binary, raftexample's members) is refused as that
// entry's result, its client answered ErrEntryRefused, and the member goes
// on applying. Each case applies the bad entry at index 2 between good
// ones, with the client of the bad command (if it has one) waiting.
func TestActorRefusesEntries(t *testing.T) {
	huge := strings.Repeat("k", 40000) // bbolt refuses keys over 32,768 bytes
	good := nativeEntryData(t, apply.Command{Op: apply.OpPut, ReqID: 77, Key: "g", Value: []byte("v")})
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
			return normalEntry(2, nativeEntryData(t, apply.Command{Op: apply.OpPut, ReqID: id, Key: huge, Value: []byte("v")}))
		}},
		{name: "a delete of a 40,000-byte key", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, nativeEntryData(t, apply.Command{Op: apply.OpDelete, ReqID: id, Key: huge}))
		}},
		{name: "a put of an empty key", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, nativeEntryData(t, apply.Command{Op: apply.OpPut, ReqID: id, Value: []byte("v")}))
		}},
		{name: "an unknown op", answered: true, entry: func(_ *testing.T, id uint64) *raftpb.Entry {
			return normalEntry(2, nativeEntryData(t, apply.Command{Op: 9, ReqID: id, Key: "k"}))
		}},
		{name: "garbage", entry: func(*testing.T, uint64) *raftpb.Entry { return normalEntry(2, []byte{0xff}) }},
		{name: "a transaction writing a 40,000-byte key", answered: true, entry: func(t *testing.T, id uint64) *raftpb.Entry {
			return uncheckedTxnEntry(t, 2, id, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "1"), kvtest.TxnPut(standIn, "2")}}, huge, messages.ErrKeyTooLarge)
		}},
		{name: "a transaction writing a key twice", answered: true, entry: func(t *testing.T, id uint64) *raftpb.Entry {
			return uncheckedTxnEntry(t, 2, id, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "1"), kvtest.TxnPut(standIn, "2")}}, "a", messages.ErrInvalidTxn)
		}},
		{name: "a transaction cut short", answered: true, entry: func(t *testing.T, id uint64) *raftpb.Entry {
			c := proposeTxn(t, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("a", "1")}})
			c.ReqID, c.Value = id, c.Value[:4]
			return normalEntry(2, nativeEntryData(t, c))
		}},
		{name: "a batch with one bad command", answered: true, applied: []string{"g"}, entry: func(t *testing.T, id uint64) *raftpb.Entry {
			bad := nativeEntryData(t, apply.Command{Op: apply.OpPut, ReqID: id, Key: huge})
			return normalEntry(2, apply.EncodeBatch(5, [][]byte{good, bad}, 0))
		}},
		{name: "a batch whose framing is broken", entry: func(*testing.T, uint64) *raftpb.Entry {
			b := apply.EncodeBatch(5, [][]byte{good, good}, 0)
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
	huge := strings.Repeat("x", bolt.MaxKeySize+1) // the longest key the db holds, and one byte
	log := []*raftpb.Entry{
		putEntry(1, "a", "1"),
		normalEntry(2, nativeEntryData(t, apply.Command{Op: apply.OpPut, ReqID: 1, Key: huge})),
		uncheckedTxnEntry(t, 3, 2, messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("b", "1"), kvtest.TxnPut(standIn, "2")}}, huge, messages.ErrKeyTooLarge),
		normalEntry(4, apply.EncodeBatch(3, [][]byte{nativeEntryData(t, apply.Command{Op: apply.OpPut, ReqID: 4, Key: "c", Value: []byte("1")}), {0xff}}, 0)),
		putEntry(5, "d", "1"),
	}
	var sums []string
	for range 2 {
		f := newFixture(t, fixtureOpts{})
		f.wantDelivery(t, f.apply(log...))
		f.noFatal(t)
		var sum string
		var err error
		f.inspect(t, func(a *Actor) { sum, err = a.st.Digest() })
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
		{"txn put", messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut(huge, "v")}}, messages.ErrKeyTooLarge},
		{"txn compare", messages.Txn{Compares: []messages.Compare{{Key: huge, Target: messages.CompareVersion, Op: messages.CompareEqual}}}, messages.ErrKeyTooLarge},
		{"txn get", messages.Txn{Failure: []messages.TxnOp{{Type: messages.OpGet, Key: huge}}}, messages.ErrKeyTooLarge},
	} {
		f.request(c.req).wantErr(t, c.want)
	}
	f.raftQuiet(t)
}
