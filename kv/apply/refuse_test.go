package apply

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/kv/store"
	"github.com/raftkv/node/messages"
)

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
		cmd := Command{Op: OpPut, Key: c.key}
		if err := checkProposed(cmd); !errors.Is(err, c.proposed) || (c.proposed == nil) != (err == nil) {
			t.Errorf("%s: checkProposed = %v, want %v", c.name, err, c.proposed)
		}
		if err := checkStored(cmd); !errors.Is(err, c.put) || (c.put == nil) != (err == nil) {
			t.Errorf("%s: checkStored = %v, want %v", c.name, err, c.put)
		}
	}
}

// The constructors the kv actor proposes through refuse what the API's
// limits forbid, whichever kind of write it is (the actor's side:
// TestActorRefusesBeforeProposing), and return the command to propose.
func TestProposeChecks(t *testing.T) {
	huge := strings.Repeat("k", messages.MaxKeyBytes+1)
	tooLong := make([]byte, maxStoredValue+1)
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"put", second(ProposePut(huge, nil, 0)), messages.ErrKeyTooLarge},
		{"put of no key", second(ProposePut("", []byte("v"), 0)), messages.ErrEmptyKey},
		{"put of a value the db cannot hold", second(ProposePut("k", tooLong, 0)), messages.ErrValueTooLarge},
		{"delete", second(ProposeDelete(huge)), messages.ErrKeyTooLarge},
		{"delete of no key", second(ProposeDelete("")), messages.ErrEmptyKey},
		{"txn put", txnErr(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut(huge, "v")}}), messages.ErrKeyTooLarge},
		{"txn compare", txnErr(messages.Txn{Compares: []messages.Compare{kvtest.CmpNum(huge, messages.CompareVersion, messages.CompareEqual, 0)}}), messages.ErrKeyTooLarge},
		{"txn get", txnErr(messages.Txn{Failure: []messages.TxnOp{kvtest.TxnGet(huge)}}), messages.ErrKeyTooLarge},
		{"txn range end", txnErr(messages.Txn{Success: []messages.TxnOp{kvtest.TxnRange(messages.Range{Start: "a", End: huge})}}), messages.ErrKeyTooLarge},
		{"txn delete range end", txnErr(messages.Txn{Success: []messages.TxnOp{kvtest.TxnDelRange("a", huge)}}), messages.ErrKeyTooLarge},
		{"txn value the db cannot hold", txnErr(messages.Txn{Success: []messages.TxnOp{{Type: messages.OpPut, Key: "k", Value: tooLong}}}), messages.ErrValueTooLarge},
		{"txn writing a key twice", txnErr(messages.Txn{Success: []messages.TxnOp{kvtest.TxnPut("k", "1"), kvtest.TxnPut("k", "2")}}), messages.ErrInvalidTxn},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}

	if c, err := ProposePut("k", []byte("v"), 0); err != nil || c.Op != OpPut || c.Key != "k" || string(c.Value) != "v" {
		t.Errorf("ProposePut = %+v, %v", c, err)
	}
	if c, err := ProposeDelete("k"); err != nil || c.Op != OpDelete || c.Key != "k" || c.Value != nil {
		t.Errorf("ProposeDelete = %+v, %v", c, err)
	}
	// A transaction names the keys it may write, or all of them if it
	// deletes a range; its value is the transaction, checked again when
	// applied.
	for _, tc := range []struct {
		txn  messages.Txn
		keys string
		all  bool
	}{
		{messages.Txn{}, "[]", false},
		{messages.Txn{Compares: []messages.Compare{kvtest.CmpValue("c", messages.CompareEqual, "1")},
			Success: []messages.TxnOp{kvtest.TxnPut("a", "1"), kvtest.TxnGet("g"), kvtest.TxnDel("b")},
			Failure: []messages.TxnOp{kvtest.TxnPut("a", "2"), kvtest.TxnRange(messages.Range{Start: "r", End: store.RangeEndAll})}}, "[a b a]", false},
		{messages.Txn{Failure: []messages.TxnOp{kvtest.TxnPut("a", "1"), kvtest.TxnDelRange("p/", "p0")}}, "[a]", true},
	} {
		c, keys, all, err := ProposeTxn(tc.txn)
		if err != nil || c.Op != OpTxn || c.Key != "" || fmt.Sprint(keys) != tc.keys || all != tc.all {
			t.Errorf("ProposeTxn(%+v) = %+v, %q, %v, %v; want keys %s, all %v", tc.txn, c, keys, all, err, tc.keys, tc.all)
			continue
		}
		if got, err := decodeTxn(c.Value); err != nil || !sameTxn(got, tc.txn) {
			t.Errorf("the proposed value decodes as %+v, %v; want %+v", got, err, tc.txn)
		}
	}
}

func second(_ Command, err error) error { return err }

func txnErr(t messages.Txn) error {
	_, _, _, err := ProposeTxn(t)
	return err
}
