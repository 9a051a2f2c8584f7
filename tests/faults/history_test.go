package faults

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
)

func TestRecorderOperations(t *testing.T) {
	rec := NewRecorder()
	cause := errors.New("504")
	// Concurrent clients: the recorder must be safe for them (-race).
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			rec.Begin(c, Input{Kind: OpPut, Key: "k", Value: "ok"}).Finish(Output{}, StatusOK, nil)
			rec.Begin(c, Input{Kind: OpPut, Key: "k", Value: "failed"}).Finish(Output{}, StatusFailed, cause)
			rec.Begin(c, Input{Kind: OpDelete, Key: "k"}).Finish(Output{}, StatusUnknown, cause)
			rec.Begin(c, Input{Kind: OpGet, Key: "k"}).Finish(Output{Value: "x", Found: true}, StatusOK, nil)
			rec.Begin(c, Input{Kind: OpGet, Key: "k"}).Finish(Output{}, StatusFailed, cause)
			rec.Begin(c, Input{Kind: OpGet, Key: "k"}).Finish(Output{}, StatusUnknown, cause)
		})
	}
	wg.Wait()

	if n := rec.Len(); n != 24 {
		t.Fatalf("Len = %d, want 24", n)
	}
	counts := rec.Counts()
	if counts[StatusOK] != 8 || counts[StatusFailed] != 8 || counts[StatusUnknown] != 8 {
		t.Fatalf("Counts = %v", counts)
	}
	for _, op := range rec.Ops() {
		if op.Return < op.Call {
			t.Errorf("%+v returned before it was called", op)
		}
		if (op.Status == StatusOK) != (op.Cause == "") {
			t.Errorf("%+v: cause must be set exactly when not ok", op)
		}
	}

	ops := rec.Operations()
	// Per client: ok put, unknown delete, ok get. Failed ops and reads of
	// unknown outcome observed nothing and must not constrain the check.
	if len(ops) != 12 {
		t.Fatalf("%d porcupine operations, want 12: %+v", len(ops), ops)
	}
	for _, op := range ops {
		in := op.Input.(Input)
		switch {
		case in.Kind == OpDelete:
			if op.Return != math.MaxInt64 {
				t.Errorf("unknown delete returns at %d, want +inf", op.Return)
			}
			if op.Metadata != "unknown: 504" {
				t.Errorf("unknown delete metadata = %v", op.Metadata)
			}
		case in.Value == "failed":
			t.Errorf("failed put kept: %+v", op)
		case op.Return == math.MaxInt64:
			t.Errorf("acknowledged %v returns at +inf", in)
		}
	}
}

func TestStatusAndKindNames(t *testing.T) {
	cases := []struct {
		got  string
		want string
	}{
		{OpGet.String(), "get"}, {OpPut.String(), "put"}, {OpDelete.String(), "delete"}, {OpKind(9).String(), "OpKind(9)"},
		{OpCAS.String(), "cas"}, {OpCASDelete.String(), "cas-delete"}, {OpTxnCAS.String(), "txn-cas"},
		{OpRangeGet.String(), "range-get"}, {OpRevoke.String(), "revoke"},
		{StatusOK.String(), "ok"}, {StatusFailed.String(), "failed"}, {StatusUnknown.String(), "unknown"},
		{Status(9).String(), "Status(9)"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestOperationsMarkUnknown: an unknown write reaches the model with an
// Output that says so, whatever the client recorded, and an acknowledged
// one with its answer as recorded.
func TestOperationsMarkUnknown(t *testing.T) {
	ops := Operations([]Op{
		cas(0, "k", "a", 3, 0, 1, Output{Rev: 9}, unknown),
		cas(0, "k", "b", 3, 2, 3, wrote(9), ok),
		cas(0, "k", "c", 3, 4, 5, refusedAt(9), ok),
		cas(0, "k", "d", 3, 6, 7, noAnswer, failed),
	})
	want := []Output{{Unknown: true}, wrote(9), refusedAt(9)}
	if len(ops) != len(want) {
		t.Fatalf("%d operations, want %d: %+v", len(ops), len(want), ops)
	}
	for i, op := range ops {
		if op.Output != want[i] {
			t.Errorf("operation %d: output %+v, want %+v", i, op.Output, want[i])
		}
	}
}

func TestConditionalCounts(t *testing.T) {
	rec := NewRecorder()
	for _, op := range []Op{
		cas(0, "k", "a", 3, 0, 1, wrote(9), ok),
		txnCAS(0, "k", "a", "b", 0, 1, wrote(10), ok),
		casDel(0, "k", 3, 0, 1, refusedAt(10), ok),
		txnCAS(0, "k", "x", "c", 0, 1, refusedValue("b", 10), ok),
		cas(0, "k", "d", 3, 0, 1, noAnswer, unknown),
		cas(0, "k", "e", 3, 0, 1, noAnswer, failed),
		putAt(0, "k", "f", 11, 0, 1), get(0, "k", "f", 0, 1),
	} {
		rec.Record(op)
	}
	got := rec.ConditionalCounts()
	want := map[string]int{"succeeded": 2, "refused": 2, "unknown": 1, "failed": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ConditionalCounts = %v, want %v", got, want)
	}
}
