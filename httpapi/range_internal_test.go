package httpapi

import (
	"math"
	"strings"
	"testing"
)

// prefixEnd is etcd's: the smallest key above every key with the prefix,
// or "\x00" (no upper bound) when there is none.
func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ prefix, end string }{
		{"", "\x00"},
		{"a", "b"},
		{"config/", "config0"},
		{"a\xff", "b"},
		{"a\xfe\xff", "a\xff"},
		{"a\xff\xff", "b"},
		{"\x00", "\x01"},
		{"\xff", "\x00"},
		{"\xff\xff\xff", "\x00"},
	} {
		if got := prefixEnd(c.prefix); got != c.end {
			t.Errorf("prefixEnd(%q) = %q, want %q", c.prefix, got, c.end)
		}
	}
}

// A continuation decodes to the revision and the key it was made of, and
// is safe in a URL as it is.
func TestContinueToken(t *testing.T) {
	for _, c := range []struct {
		rev  uint64
		next string
	}{
		{1, ""}, {57, "config/b\x00"}, {math.MaxUint64, "\xff\xff\x00"}, {300, strings.Repeat("k", 1000)},
	} {
		tok := encodeContinue(c.rev, c.next)
		if strings.ContainsAny(tok, "+/=%&") {
			t.Errorf("token %q needs escaping in a URL", tok)
		}
		rev, next, err := decodeContinue(tok)
		if err != nil || rev != c.rev || next != c.next {
			t.Errorf("decodeContinue(encodeContinue(%d, %q)) = %d, %q, %v", c.rev, c.next, rev, next, err)
		}
	}
	for _, bad := range []string{"", "!", "AA", "gA", "AQ==", encodeContinue(0, "k")} {
		if rev, next, err := decodeContinue(bad); err == nil {
			t.Errorf("decodeContinue(%q) = %d, %q, want an error", bad, rev, next)
		}
	}
}
