package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/raftkv/node/messages"
)

// TestFatalLine: the last line after a fatal stop is one line, of bounded
// length, and names the component and the error's start.
func TestFatalLine(t *testing.T) {
	long := errors.New("apply entry 17: write: " + strings.Repeat("v", 10000))
	cases := []struct {
		err        error
		wantPrefix string
	}{
		{messages.Fatal{Component: "wal", Err: errors.New("fsync: no space left on device")},
			"stopped on a fatal error: wal: fsync: no space left on device"},
		{messages.Fatal{Component: "kv", Err: long}, "stopped on a fatal error: kv: apply entry 17: write: vvv"},
		{messages.Fatal{Component: "kv", Err: errors.Join(errors.New("one"), errors.New("two"))},
			"stopped on a fatal error: kv: one two"},
	}
	for _, c := range cases {
		got := fatalLine(c.err)
		if !strings.HasPrefix(got, c.wantPrefix) {
			t.Errorf("got %.100q, want the prefix %q", got, c.wantPrefix)
		}
		if strings.ContainsAny(got, "\n\r") {
			t.Errorf("more than one line: %q", got)
		}
		if max := len("stopped on a fatal error: ") + 512 + len(fmt.Sprintf("…(%d bytes)", 100000)); len(got) > max {
			t.Errorf("%d bytes long, more than %d", len(got), max)
		}
	}
}
