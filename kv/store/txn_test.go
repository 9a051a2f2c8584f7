package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/raftkv/node/kv/internal/kvtest"
	"github.com/raftkv/node/messages"
)

func nested(t messages.Txn) messages.TxnOp { return messages.TxnOp{Type: messages.OpTxn, Txn: &t} }

// opNames spells operations as type and key, "txn" for a nested one.
func opNames(ops []messages.TxnOp) string {
	var out []string
	for _, op := range ops {
		out = append(out, fmt.Sprintf("%d %s", op.Type, op.Key))
	}
	return fmt.Sprint(out)
}

// Branch is the path Txn would run, decided up front against the state
// as written, nested transactions' branches in their place: what the
// quota weighs.
func TestBranch(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "a", "1", 1)
	s.TakeEvents()
	txn := messages.Txn{
		Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")},
		Success: []messages.TxnOp{
			kvtest.TxnPut("a", "2"),
			nested(messages.Txn{
				Compares: []messages.Compare{kvtest.CmpValue("a", messages.CompareEqual, "1")}, // before the outer put
				Success:  []messages.TxnOp{kvtest.TxnPut("b", "1"), nested(messages.Txn{Compares: []messages.Compare{kvtest.CmpNum("b", messages.CompareVersion, messages.CompareGreater, 0)}, Success: []messages.TxnOp{kvtest.TxnPut("x", "")}, Failure: []messages.TxnOp{kvtest.TxnDel("c")}})},
				Failure:  []messages.TxnOp{kvtest.TxnPut("no", "")},
			}),
			kvtest.TxnGet("d"),
		},
		Failure: []messages.TxnOp{kvtest.TxnPut("no", "")},
	}
	ok, ops, err := s.Branch(txn)
	if err != nil || !ok || opNames(ops) != "[3 a 3 b 4 c 1 d]" {
		t.Fatalf("Branch = %v, %s, %v; want success running put a, put b, delete c, get d", ok, opNames(ops), err)
	}
	// Deciding reads only: nothing written.
	if s.Revision() != 1 || len(s.TakeEvents()) != 0 {
		t.Fatalf("Branch wrote: revision %d", s.Revision())
	}
	// Txn runs that path, every write at its revision.
	ok, res, err := s.Txn(txn, 2, true)
	if err != nil || !ok || len(res) != 3 || !res[1].Succeeded || len(res[1].Results) != 2 || res[1].Results[1].Succeeded {
		t.Fatalf("Txn = %v %+v %v", ok, res, err)
	}
	if got := kvtest.EventNames(s.TakeEvents()); got != "[a@2 b@2]" {
		t.Fatalf("events %s", got)
	}
}

// A delete with prev returns what it removed, in key order, values
// copied out of the db's pages; the store's DeleteRange is as it was.
func TestDeleteRangePrev(t *testing.T) {
	s := newTestStore(t)
	for i, k := range []string{"b", "a", "c", "d"} {
		mustPut(t, s, k, "v"+k, uint64(i+1))
	}
	n, prev, err := s.deleteRange("a", "d", 5, true)
	if err != nil || n != 3 {
		t.Fatalf("deleteRange = %d, %v", n, err)
	}
	want := []messages.KV{
		{Key: "a", Value: []byte("va"), CreateRevision: 2, ModRevision: 2, Version: 1},
		{Key: "b", Value: []byte("vb"), CreateRevision: 1, ModRevision: 1, Version: 1},
		{Key: "c", Value: []byte("vc"), CreateRevision: 3, ModRevision: 3, Version: 1},
	}
	// Writes that reuse the freed pages leave the copies alone.
	mustPut(t, s, "a", "xx", 6)
	mustPut(t, s, "b", "yy", 6)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(prev, want) {
		t.Fatalf("prev %+v, want %+v", prev, want)
	}
	if n, prev, err := s.deleteRange("absent", "", 7, true); err != nil || n != 0 || prev != nil {
		t.Fatalf("deleting an absent key: %d %+v %v", n, prev, err)
	}
	if n, err := s.DeleteRange("d", "", 7); err != nil || n != 1 {
		t.Fatalf("DeleteRange = %d, %v", n, err)
	}
}

// A put keeping the value or lease of an absent key fails the transaction
// before anything is written; the check reads the state before the
// transaction along the path that runs.
func TestTxnKeepAbsent(t *testing.T) {
	s := newTestStore(t)
	mustPut(t, s, "a", "1", 1)
	s.TakeEvents()
	keepValue := messages.TxnOp{Type: messages.OpPut, Key: "absent", IgnoreValue: true}
	for _, txn := range []messages.Txn{
		{Success: []messages.TxnOp{kvtest.TxnPut("a", "2"), keepValue}},
		{Success: []messages.TxnOp{kvtest.TxnDel("a"), nested(messages.Txn{Success: []messages.TxnOp{keepValue}})}},
	} {
		if _, _, err := s.Txn(txn, 2, true); !errors.Is(err, messages.ErrNotFound) {
			t.Fatalf("Txn = %v, want ErrNotFound", err)
		}
		if s.Revision() != 1 || len(s.TakeEvents()) != 0 || string(kvOf(t, s, "a").Value) != "1" {
			t.Fatalf("a failed transaction wrote: revision %d", s.Revision())
		}
	}
}
