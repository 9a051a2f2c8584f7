package faults

import (
	"errors"
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
		{StatusOK.String(), "ok"}, {StatusFailed.String(), "failed"}, {StatusUnknown.String(), "unknown"},
		{Status(9).String(), "Status(9)"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
