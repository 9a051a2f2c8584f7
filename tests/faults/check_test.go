package faults

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestCheck(t *testing.T) {
	legal := []Op{put(0, "k", "a", 0, 1, ok), put(1, "k", "b", 2, 3, unknown), get(2, "k", "b", 4, 5)}
	stale := []Op{put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok), get(1, "k", "a", 4, 5)}
	cases := []struct {
		name    string
		ops     []Op
		html    string // relative to a temp dir; "" for none
		outcome porcupine.CheckResult
		wantErr error
		written bool
	}{
		{"legal", legal, "legal.html", porcupine.Ok, nil, false},
		{"stale read, visualized", stale, "stale.html", porcupine.Illegal, ErrNotLinearizable, true},
		{"stale read, no path", stale, "", porcupine.Illegal, ErrNotLinearizable, false},
		{"stale read, unwritable path", stale, "missing-dir/stale.html", porcupine.Illegal, ErrNotLinearizable, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecorder()
			for _, op := range tc.ops {
				rec.Record(op)
			}
			dir := t.TempDir()
			path := ""
			if tc.html != "" {
				path = filepath.Join(dir, tc.html)
			}
			res, err := rec.Check(time.Minute, path)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if res.Outcome != tc.outcome {
				t.Fatalf("outcome = %v, want %v", res.Outcome, tc.outcome)
			}
			if res.Operations != len(tc.ops) {
				t.Errorf("Operations = %d, want %d", res.Operations, len(tc.ops))
			}
			_, statErr := os.Stat(path)
			if written := path != "" && statErr == nil; written != tc.written {
				t.Fatalf("visualization written = %v, want %v", written, tc.written)
			}
			if !tc.written {
				if res.HTMLPath != "" {
					t.Errorf("HTMLPath = %q though nothing was written", res.HTMLPath)
				}
				return
			}
			if res.HTMLPath != path || !strings.Contains(err.Error(), path) {
				t.Errorf("HTMLPath = %q, error %q: both must name %s", res.HTMLPath, err, path)
			}
			html, readErr := os.ReadFile(path)
			if readErr != nil {
				t.Fatal(readErr)
			}
			// The model's descriptions must reach the page.
			if !strings.Contains(string(html), `get(\"k\") -\u003e \"a\"`) {
				t.Errorf("visualization lacks the stale read's description")
			}
		})
	}
}

// TestCheckTimeout gives porcupine a history whose search space is
// exponential (many concurrent puts, then a read of a value nobody wrote,
// so every order must be tried) and a tiny budget.
func TestCheckTimeout(t *testing.T) {
	var ops []Op
	for c := range 40 {
		ops = append(ops, put(c, "k", fmt.Sprint("v", c), 0, 100, ok))
	}
	ops = append(ops, get(40, "k", "nobody", 200, 201))
	res, err := Check(Operations(ops), 20*time.Millisecond, filepath.Join(t.TempDir(), "x.html"))
	if !errors.Is(err, ErrCheckTimedOut) || errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("err = %v, want only ErrCheckTimedOut", err)
	}
	if res.Outcome != porcupine.Unknown || res.HTMLPath != "" {
		t.Fatalf("result = %+v", res)
	}
}

func TestLostWrites(t *testing.T) {
	present := func(v string) FinalRead { return FinalRead{Value: v, Found: true} }
	absent := FinalRead{}
	cases := []struct {
		name  string
		ops   []Op
		final map[string]FinalRead
		lost  []string // keys, sorted
	}{
		{"last acknowledged put survives", []Op{put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok)},
			map[string]FinalRead{"k": present("b")}, nil},
		{"last acknowledged put lost", []Op{put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, ok)},
			map[string]FinalRead{"k": present("a")}, []string{"k"}},
		{"acknowledged put gone", []Op{put(0, "k", "a", 0, 1, ok)},
			map[string]FinalRead{"k": absent}, []string{"k"}},
		{"key never read at the end", []Op{put(0, "k", "a", 0, 1, ok)},
			map[string]FinalRead{}, []string{"k"}},
		{"failed later write does not excuse", []Op{put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, failed)},
			map[string]FinalRead{"k": present("b")}, []string{"k"}},
		{"unknown later write excuses", []Op{put(0, "k", "a", 0, 1, ok), put(0, "k", "b", 2, 3, unknown)},
			map[string]FinalRead{"k": present("b")}, nil},
		{"unknown earlier write may land late", []Op{put(0, "k", "b", 0, 1, unknown), put(1, "k", "a", 5, 6, ok)},
			map[string]FinalRead{"k": present("b")}, nil},
		{"concurrent acknowledged puts are left to the checker", []Op{put(0, "k", "a", 0, 3, ok), put(1, "k", "b", 1, 2, ok)},
			map[string]FinalRead{"k": present("zzz")}, nil},
		{"acknowledged delete holds", []Op{put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok)},
			map[string]FinalRead{"k": absent}, nil},
		{"deleted key came back", []Op{put(0, "k", "a", 0, 1, ok), del(0, "k", 2, 3, ok)},
			map[string]FinalRead{"k": present("a")}, []string{"k"}},
		{"later put excuses a delete", []Op{del(0, "k", 0, 1, ok), put(0, "k", "a", 2, 3, ok)},
			map[string]FinalRead{"k": present("a")}, nil},
		{"reads and unwritten keys are ignored", []Op{get(0, "k", "a", 0, 1), getAbsent(0, "j", 0, 1)},
			map[string]FinalRead{"k": absent}, nil},
		{"a successful CAS is a last word", []Op{put(0, "k", "a", 0, 1, ok), cas(0, "k", "b", 3, 2, 3, wrote(9), ok)},
			map[string]FinalRead{"k": present("a")}, []string{"k"}},
		{"a successful CAS survives with its revision", []Op{put(0, "k", "a", 0, 1, ok), cas(0, "k", "b", 3, 2, 3, wrote(9), ok)},
			map[string]FinalRead{"k": {Value: "b", Found: true, Rev: 9}}, nil},
		{"the value survives at another revision", []Op{putAt(0, "k", "a", 5, 0, 1)},
			map[string]FinalRead{"k": {Value: "a", Found: true, Rev: 7}}, []string{"k"}},
		{"a successful transaction is a last word", []Op{put(0, "k", "a", 0, 1, ok), txnCAS(0, "k", "a", "b", 2, 3, wrote(9), ok)},
			map[string]FinalRead{"k": present("a")}, []string{"k"}},
		{"a successful conditional delete is a last word", []Op{putAt(0, "k", "a", 5, 0, 1), casDel(0, "k", 5, 2, 3, wrote(9), ok)},
			map[string]FinalRead{"k": present("a")}, []string{"k"}},
		{"a refused CAS is no write", []Op{putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 3, 0, 3, refusedAt(5), ok)},
			map[string]FinalRead{"k": {Value: "a", Found: true, Rev: 5}}, nil},
		{"a refused CAS excuses nothing", []Op{putAt(0, "k", "a", 5, 0, 1), cas(1, "k", "b", 3, 0, 3, refusedAt(5), ok)},
			map[string]FinalRead{"k": present("b")}, []string{"k"}},
		{"an unknown CAS may land late", []Op{putAt(0, "k", "a", 5, 2, 3), cas(1, "k", "b", 5, 0, 1, noAnswer, unknown)},
			map[string]FinalRead{"k": present("b")}, nil},
		{"losses sorted by key", []Op{put(0, "b", "1", 0, 1, ok), put(0, "a", "2", 0, 1, ok), put(0, "c", "3", 0, 1, ok)},
			map[string]FinalRead{"c": present("3")}, []string{"a", "b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecorder()
			for _, op := range tc.ops {
				rec.Record(op)
			}
			losses := LostWrites(rec, tc.final)
			var keys []string
			for _, l := range losses {
				keys = append(keys, l.Key)
				if l.String() == "" {
					t.Errorf("empty description of %+v", l)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.lost) {
				t.Fatalf("lost keys %v, want %v: %v", keys, tc.lost, losses)
			}
		})
	}
}

func TestLossDescribesTheWrite(t *testing.T) {
	rec := NewRecorder()
	rec.Record(put(3, "k", "a", 0, 1, ok))
	losses := LostWrites(rec, map[string]FinalRead{"k": {Value: "z", Found: true}})
	if len(losses) != 1 {
		t.Fatalf("losses = %v", losses)
	}
	l := losses[0]
	if l.Want != (FinalRead{Value: "a", Found: true}) || l.Got.Value != "z" || l.Missing || l.Client != 3 || l.Return != tick(1) {
		t.Fatalf("loss = %+v", l)
	}
	if s := l.String(); !strings.Contains(s, `"a"`) || !strings.Contains(s, `"z"`) {
		t.Errorf("String() = %s", s)
	}
}
